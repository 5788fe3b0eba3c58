"""A trained model ready for inference, rebuilt from its checkpoint alone: the run config stored in the
checkpoint names the model, the state dict fills it. Evaluate and predict need no training config, and start
alike (`load_for_inference`).
"""
from __future__ import annotations

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from cvae_video.checkpoints import read_checkpoint
from cvae_video.errors import UserError
from cvae_video.module import CVAEModule

# Model classes that moved, under the names older checkpoints give them
MOVED = {"cvae_video.networks.PoseCVAE": "cvae_video.models.template.PoseCVAE",
         "cvae_video.compositing.CompositingCVAE": "cvae_video.models.compositing.CompositingCVAE"}


def pick_device(name: str) -> torch.device:
    """`auto`: the GPU when there is one, else the CPU; any other name goes to torch as it is."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_module(ckpt_path: str | None, device: torch.device) -> tuple[CVAEModule, dict]:
    """The module of a `cvae_video.train` checkpoint in eval mode on `device`, and {epoch, global_step}."""
    if ckpt_path is None:
        raise UserError("ckpt_path is required: ckpt_path=/path/to/checkpoints/last.ckpt")
    ckpt = read_checkpoint(ckpt_path)
    run_config = ckpt.get("run_config") if isinstance(ckpt, dict) else None
    if not run_config:
        raise UserError(f"ckpt_path {ckpt_path}: no run_config in it (not written by cvae_video.train)")
    net = run_config["module"]["net"]
    net["_target_"] = MOVED.get(net["_target_"], net["_target_"])
    module = instantiate(run_config["module"], _partial_=True)(run_config=run_config)
    module.load_state_dict(ckpt["state_dict"])
    return module.to(device).eval(), {"epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step")}


def load_for_inference(cfg: DictConfig, stage: str) -> tuple[CVAEModule, dict, L.LightningDataModule, torch.device]:
    """What evaluate and predict start with: every RNG seeded with `cfg.seed`, the device of `cfg.device`, the
    model of `cfg.ckpt_path` on it (and its {epoch, global_step}), and the data module of `cfg.data` (generated
    if it is a synthetic set not made yet) set up for `stage` ("validate" or "predict")."""
    L.seed_everything(cfg.seed, verbose=False)
    device = pick_device(cfg.device)
    module, trained = load_module(cfg.ckpt_path, device)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup(stage)
    return module, trained, datamodule, device

"""A trained model ready for inference, rebuilt from its checkpoint alone: the run config stored in the
checkpoint names the model and the data it was trained on, the state dict fills it. Evaluate and predict need no
training config, and start alike (`load_for_inference`).

A checkpoint is data, not code (students share them, teaching assistants evaluate them): of its stored config only
the package's own model, module and data classes and torch's optimizers and schedulers are built; any other
`_target_` is refused before anything is instantiated.
"""

from __future__ import annotations

import importlib

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from cvae_video.checkpoints import read_checkpoint
from cvae_video.config import check_ranges
from cvae_video.data.datamodule import LAB4DataModule
from cvae_video.errors import UserError
from cvae_video.models.sequence import SequenceCVAE
from cvae_video.module import CVAEModule

# The module of a `_target_` a checkpoint may name -> the class the target must be, or derive from
BUILDABLE = {
    "torch.optim": torch.optim.Optimizer,
    "torch.optim.lr_scheduler": torch.optim.lr_scheduler.LRScheduler,
    "cvae_video.module": CVAEModule,
    "cvae_video.models.template": SequenceCVAE,
    "cvae_video.models.compositing": SequenceCVAE,
    "cvae_video.data.datamodule": LAB4DataModule,
}


def buildable(target: str) -> bool:
    module, _, name = target.rpartition(".")
    if module not in BUILDABLE:
        return False
    built = getattr(importlib.import_module(module), name, None)
    return isinstance(built, type) and issubclass(built, BUILDABLE[module])


def check_targets(node, ckpt_path: str, key: str = "") -> None:
    """`UserError` naming the first `_target_` under `node` that is not `buildable`."""
    if isinstance(node, dict):
        target = node.get("_target_")
        if target is not None and not (isinstance(target, str) and buildable(target)):
            raise UserError(
                f"ckpt_path {ckpt_path}: refused to build {target!r} ({key}._target_): a checkpoint may "
                f"name only cvae_video's model, module and data classes and torch's optimizers and "
                f"schedulers"
            )
        for k, v in node.items():
            check_targets(v, ckpt_path, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            check_targets(v, ckpt_path, f"{key}[{i}]")


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
    check_targets(run_config["module"], ckpt_path, "module")
    try:
        module = instantiate(run_config["module"], _partial_=True)(run_config=run_config)
        module.load_state_dict(ckpt["state_dict"])
    except (InstantiationException, RuntimeError) as err:  # its model config or weights fit another version
        reason = " ".join(str(err.__cause__ or err).split())[:200]
        raise UserError(
            f"ckpt_path {ckpt_path}: this version of cvae_video cannot rebuild its model ({reason}); "
            f"evaluate it with the version that trained it"
        ) from None
    return module.to(device).eval(), {"epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step")}


def data_config(data: DictConfig, stored: dict, ckpt_path: str) -> tuple[DictConfig, str]:
    """The data config evaluate or predict read, and where it came from: the checkpoint's (`data=checkpoint`, the
    default; its non-null keys replace the stored ones), or the data set the command line names."""
    if not data.get("from_checkpoint"):
        return data, "named on the command line"
    if "data" not in stored:
        raise UserError(f"ckpt_path {ckpt_path}: it holds no data config; name the data: data=lab4 data.root=...")
    check_targets(stored["data"], ckpt_path, "data")
    replaced = {k: v for k, v in OmegaConf.to_container(data).items() if k != "from_checkpoint" and v is not None}
    source = "the checkpoint's" + (
        f", with {', '.join(f'data.{k}' for k in replaced)} from the command line" if replaced else ""
    )
    return OmegaConf.merge(stored["data"], replaced), source


def load_for_inference(cfg: DictConfig, stage: str) -> tuple[CVAEModule, dict, L.LightningDataModule, torch.device]:
    """What evaluate and predict start with: every RNG seeded with `cfg.seed`, the device of `cfg.device`, the
    model of `cfg.ckpt_path` on it (and {epoch, global_step, data_root}), and the data module of the data it was
    trained on (or of the data `cfg.data` names) set up for `stage` ("validate" or "predict"). Prints the data
    folder. Never generates data for a checkpoint: its folder must be there."""
    L.seed_everything(cfg.seed, verbose=False)
    device = pick_device(cfg.device)
    module, trained = load_module(cfg.ckpt_path, device)
    data, source = data_config(cfg.data, module.run_config, cfg.ckpt_path)
    named, typed_root = data is cfg.data, cfg.data.get("root")
    with open_dict(cfg):
        cfg.data = data  # the data read, also in the run's recorded config
    check_ranges(cfg)
    datamodule = instantiate(cfg.data)
    if named:
        datamodule.prepare_data()  # a synthetic set the user names is made where the package keeps its sets
    elif not datamodule.root.is_dir():
        folder = "data.root" if typed_root is not None else "the checkpoint's data folder"
        raise UserError(
            f"{folder} {datamodule.root} does not exist: point to the data with data.root=/path/to/it "
            f"(another data set: data=lab4 data.root=...)"
        )
    print(f"data: {datamodule.root} ({source})")
    datamodule.setup(stage)
    return module, {**trained, "data_root": str(datamodule.root.resolve())}, datamodule, device

"""Evaluate a checkpoint on the validation sequence(s): `python -m cvae_video.evaluate ckpt_path=...`.

The model rolls out every validation sequence `eval.num_samples` times from its first frame and poses
(z ~ N(0, I), its own outputs fed back). PSNR and SSIM are taken per sample and per frame and set beside
three baselines on the same frames: the first frame copied, the previous true frame copied (a reference
that no rollout can reach: it sees the truth), and the model's one-step prediction from the true
previous frame. Writes metrics.json, psnr_per_frame.png and val_rollout.gif to the run dir.
"""

from __future__ import annotations

from cvae_video.cli import TRAINING_GROUPS, EntryPoint, check_command_line

ENTRY = EntryPoint(
    "cvae_video.evaluate",
    "evaluate",
    "Score a checkpoint on the validation sequence(s) of the data it was trained on (or of data=... / data.root=...):\n"
    "eval.num_samples rollouts with z from the prior, PSNR and SSIM per sample and frame beside copy-first-frame\n"
    "and the other baselines. Writes metrics.json, psnr_per_frame.png and val_rollout.gif to its run dir.",
    ("data", "gif", "paths"),
    (
        "ckpt_path=outputs/demo/train/checkpoints/last.ckpt",
        "ckpt_path=<run>/checkpoints/last.ckpt eval.num_samples=10",
        "ckpt_path=<run>/checkpoints/last.ckpt data.root=/path/to/LAB4_Dataset",
    ),
    refused_groups=TRAINING_GROUPS,
)
if __name__ == "__main__":  # before torch loads: --help and a bad command line answer in a second
    check_command_line(ENTRY)

import json
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import default_collate

from cvae_video import config  # noqa: F401  (registers the config resolvers)
from cvae_video.atomic import atomic_open
from cvae_video.data.synthetic import read_ceiling
from cvae_video.errors import user_errors
from cvae_video.inference import load_for_inference
from cvae_video.latent import diagnostics
from cvae_video.metrics import best_of_n, copy_first_frame, copy_previous_frame, frame_scores, kaggle_psnr, summary
from cvae_video.plots import Lines, Panel, save_figure
from cvae_video.video_io import write_gif

BASELINE_NAMES = {
    "one_step": "one step from the true previous frame",
    "copy_first": "copy the first frame",
    "copy_prev_gt": "copy the previous true frame",
}


def evaluate(cfg: DictConfig) -> dict:
    n = cfg.eval.num_samples
    module, trained, datamodule, device = load_for_inference(cfg, "validate")
    frames, poses = (x.to(device) for x in default_collate(list(datamodule.val_set)))  # (S, T, 3, H, W) each
    s, t = frames.shape[:2]
    with torch.inference_mode():
        # all samples of all sequences in one batch, sample-major: row i * S + j is sample i of sequence j
        videos = module.rollout(frames[:, :1].repeat(n, 1, 1, 1, 1), poses.repeat(n, 1, 1, 1, 1))  # (n*S, T, ...)
        one_step, _ = module.net.unroll(poses, frames, use_posterior=False, teacher_forcing=True)  # (S, T-1, ...)
        latent = diagnostics(*module.net.latent_moments(frames, poses))
    truth = frames[:, 1:]  # (S, T-1, 3, H, W)
    samples = {
        k: v.view(n, s, t - 1) for k, v in frame_scores(videos[:, 1:], truth.repeat(n, 1, 1, 1, 1)).items()
    }  # (n, S, T-1) each
    per_sample = {k: v.mean((1, 2)) for k, v in samples.items()}  # (n,) each
    results = {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        **trained,
        "sequences": s,
        "predicted_frames": t - 1,
        **summary(samples),
        "kaggle_psnr": kaggle_psnr(videos, frames.repeat(n, 1, 1, 1, 1)).mean().item(),
        "samples": {
            "n": n,
            **{f"{k}_mean_per_sample": v.tolist() for k, v in per_sample.items()},
            **{f"{k}_std_over_samples": v.std(unbiased=False).item() for k, v in per_sample.items()},
        },
        "best_of_n": {"n": n, **summary(best_of_n(samples))},
        "latent": latent,
        "baselines": {
            "copy_first": {
                **summary(frame_scores(copy_first_frame(frames), truth)),
                "kaggle_psnr": kaggle_psnr(torch.cat([frames[:, :1], copy_first_frame(frames)], 1), frames)
                .mean()
                .item(),
            },
            "copy_prev_gt": summary(frame_scores(copy_previous_frame(frames), truth)),
            "one_step": summary(frame_scores(one_step, truth)),
        },
        "train_config": module.run_config,
        "eval_config": OmegaConf.to_container(cfg, resolve=True),
    }

    results["ceiling"], ceiling_line = read_ceiling(datamodule.root, "val")
    out = Path(cfg.paths.output_dir)
    with atomic_open(out / "metrics.json") as f:
        json.dump(results, f, indent=1)
    save_figure(
        out / "psnr_per_frame.png",
        [Panel("PSNR per predicted frame (validation)", per_frame_lines(results), "dB")],
        "predicted frame",
    )
    write_gif(
        out / "val_rollout.gif",
        {"truth": frames[0], "prediction": videos[0], "pose": poses[0]},
        cfg.gif.fps,
        cfg.gif.scale,
    )
    print(table(results))
    print(ceiling_line)
    for name in ("metrics.json", "psnr_per_frame.png", "val_rollout.gif"):
        print(f"wrote {out / name}")
    return results


def per_frame_lines(results: dict) -> Lines:
    """The PSNR curves of psnr_per_frame.png: the model (mean and best of N) and the baselines."""
    frames = list(range(1, results["predicted_frames"] + 1))
    n = results["best_of_n"]["n"]
    lines = {name: (frames, results["baselines"][key]["psnr_per_frame"]) for key, name in BASELINE_NAMES.items()}
    lines[f"model, best of {n}"] = (frames, results["best_of_n"]["psnr_per_frame"])
    lines[f"model, mean of {n} samples"] = (frames, results["psnr_per_frame"])  # drawn last: on top
    return lines


def table(results: dict) -> str:
    """The model's PSNR and SSIM beside the baselines', one row each."""
    n = results["best_of_n"]["n"]
    rows = [(f"model, mean of {n} samples", results), (f"model, best of {n}", results["best_of_n"])]
    rows += [(name, results["baselines"][key]) for key, name in BASELINE_NAMES.items()]
    head = (
        f"validation: {results['sequences']} sequence(s) x {results['predicted_frames']} predicted frames, "
        f"checkpoint of epoch {results['epoch']}\n{'':40s} {'PSNR dB':>8s} {'SSIM':>7s}"
    )
    spread = f"   (+- {results['samples']['psnr_std_over_samples']:.2f} dB over samples)"
    lines = [f"{name:40s} {r['psnr_mean']:8.2f} {r['ssim_mean']:7.3f}" for name, r in rows]
    lines[0] += spread
    lines.append(
        f"Kaggle-style PSNR (rounded pixels, frames 1-600): model {results['kaggle_psnr']:.2f}, "
        f"copy the first frame {results['baselines']['copy_first']['kaggle_psnr']:.2f}"
    )
    latent = results["latent"]
    lines.append(
        f"what z carries: KL {latent['kl']:.3g} a frame (summed over the latent), {latent['active_units']} of "
        f"{latent['units']} units active; best of {n} - mean: "
        f"{results['best_of_n']['psnr_mean'] - results['psnr_mean']:+.2f} dB"
    )
    return "\n".join([head, *lines])


@hydra.main(version_base=None, config_path="conf", config_name="evaluate")
@user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()

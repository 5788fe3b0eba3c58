"""Predict the test sequences: `python -m cvae_video.predict ckpt_path=...`.

Every test sequence found on disk (test/test_label/{i}/) rolls out, all in one batch, from its given first
frame and its poses (z ~ N(0, I)). Writes to the run dir: seq{i}/frame{k}.png, pred_seq{i}.gif (the
prediction beside its poses, and beside the truth where there is one), submission.csv in the course's
format and, where the test ground truth exists (test/test_gt/, the synthetic set keeps it),
test_scores.json with PSNR and SSIM per sequence.
"""

from __future__ import annotations

from cvae_video.cli import TRAINING_GROUPS, EntryPoint, check_command_line

ENTRY = EntryPoint(
    "cvae_video.predict",
    "predict",
    "Roll out every test sequence of the data the checkpoint was trained on (or of data=... / data.root=...) from\n"
    "its first frame and poses. Writes seq{i}/frame{k}.png, pred_seq{i}.gif, the course's submission.csv and,\n"
    "where test ground truth exists, test_scores.json to its run dir.",
    ("data", "gif", "paths"),
    (
        "ckpt_path=outputs/demo/train/checkpoints/last.ckpt",
        "ckpt_path=<run>/checkpoints/last.ckpt hydra.run.dir=my_submission",
        "ckpt_path=<run>/checkpoints/last.ckpt data=lab4 data.root=/path/to/LAB4_Dataset",
    ),
    refused_groups=TRAINING_GROUPS,
)
if __name__ == "__main__":  # before torch loads: --help and a bad command line answer in a second
    check_command_line(ENTRY)

import json
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from cvae_video import config  # noqa: F401  (registers the config resolvers)
from cvae_video.atomic import atomic_open
from cvae_video.data.synthetic import read_ceiling
from cvae_video.errors import user_errors
from cvae_video.inference import load_for_inference
from cvae_video.metrics import frame_scores, kaggle_psnr, summary
from cvae_video.video_io import write_frames, write_gif, write_submission


def predict(cfg: DictConfig) -> dict:
    module, trained, datamodule, device = load_for_inference(cfg, "predict")
    batch = next(iter(datamodule.predict_dataloader()))  # every test sequence in one batch
    with torch.inference_mode():
        videos = module.rollout(batch["first_frame"].to(device), batch["poses"].to(device)).cpu()  # (S, T, 3, H, W)
    ids = batch["id"].tolist()

    out = Path(cfg.paths.output_dir)
    for s, i in enumerate(ids):
        write_frames(out / f"seq{i}", videos[s])
        panels = {"truth": batch["truth"][s]} if "truth" in batch else {}
        write_gif(
            out / f"pred_seq{i}.gif",
            {**panels, "prediction": videos[s], "pose": batch["poses"][s]},
            cfg.gif.fps,
            cfg.gif.scale,
        )
    rows = write_submission(out / "submission.csv", videos)
    print(
        f"{len(ids)} test sequence(s) x {videos.shape[1]} frames: {out}/seq{{i}}/frame{{k}}.png, "
        f"{out}/pred_seq{{i}}.gif for i in {ids}"
    )
    print(f"wrote {out / 'submission.csv'} ({rows} rows)")

    results = {
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        **trained,
        "sequence_ids": ids,
        "frames": videos.shape[1],
        "submission_rows": rows,
    }
    results["ceiling"], ceiling_line = read_ceiling(datamodule.root, "test")
    if "truth" in batch:
        scores = frame_scores(videos[:, 1:], batch["truth"][:, 1:])  # (S, T-1) each
        kaggle = kaggle_psnr(videos, batch["truth"])  # (S,)
        results |= summary(scores) | {"kaggle_psnr": kaggle.mean().item()}
        results["per_sequence"] = {
            str(i): {**{f"{k}_mean": v[s].mean().item() for k, v in scores.items()}, "kaggle_psnr": kaggle[s].item()}
            for s, i in enumerate(ids)
        }
        with atomic_open(out / "test_scores.json") as f:
            json.dump(results, f, indent=1)
        print(
            f"test PSNR {results['psnr_mean']:.2f} dB, SSIM {results['ssim_mean']:.3f}, "
            f"Kaggle-style PSNR {results['kaggle_psnr']:.2f} dB "
            f"(mean over {len(ids)} sequence(s)); wrote {out / 'test_scores.json'}"
        )
    print(ceiling_line)
    return results


@hydra.main(version_base=None, config_path="conf", config_name="predict")
@user_errors
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()

"""Synthetic data sets in the course's LAB4 layout, generated on first use (`data=synthetic`, the default).

A scene draws videos as (frame, pose image) pairs: `performer` (the default) is one performer in one
room, shaped like the course's data; `many_looks` draws a new look for every video. This module writes
a scene's videos in the LAB4 layout, plus two additions the loader uses when present:
`train/segments.json` (first frame index of each video, so training clips never span two videos) and
`test/test_gt/{i}/frame{k}.png` (the held-out test frames, for scoring predictions).

Every video has its own random stream, (seed, split, video), so the set is the same whatever the number
of worker processes, and the validation and test sequences do not depend on the training set's size.

    python -m cvae_video.data.synthetic --root data/performer_v1 [--scene performer] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_all_start_methods, get_context, get_start_method
from pathlib import Path

import numpy as np
from PIL import Image

from cvae_video.atomic import atomic_open
from cvae_video.data import many_looks, performer
from cvae_video.errors import UserError
from cvae_video.scoring import KAGGLE_FRAMES, PSNR_CEILING

SCENES = {
    "performer": performer.draw_video,
    # the performer's room with a door that opens and closes at random, about every 60 frames: the next frame is
    # uncertain given the pose and the previous frame (what a latent is for)
    "performer_door": partial(performer.draw_video, door_rate=1 / 60),
    "many_looks": many_looks.draw_video,
}
CEILING_FILE = "ceiling.json"
CEILING_ABOUT = (
    "PSNR of the clean render (before the camera's flicker) against the saved frames: no model can do better"
)
SPLITS = {"train": 0, "val": 1, "test": 2}


def _write_video(
    draw,
    seed: int,
    split: str,
    video: int,
    length: int,
    size: tuple[int, int],
    frame_dir: Path | None,
    label_dir: Path,
    first_index: int = 0,
    first_frame_dir: Path | None = None,
) -> None:
    """Draw one video with `draw` (a scene's `draw_video`) and save its PNGs; `first_frame_dir` gets frame 0
    only (the test split's layout). Returns the PSNR of every frame's clean render against the saved frame."""
    rng = np.random.default_rng([seed, SPLITS[split], video])
    psnr = []
    for k, (frame, label, clean) in enumerate(draw(rng, length, size)):
        name = f"frame{first_index + k}.png"
        label.save(label_dir / name)
        if frame_dir is not None:
            frame.save(frame_dir / name)
        if first_frame_dir is not None and k == 0:
            frame.save(first_frame_dir / name)
        psnr.append(frame_psnr(frame, clean))
    return psnr


def frame_psnr(frame, clean) -> float:
    """PSNR (dB, at most PSNR_CEILING) of a saved frame against its clean render, both uint8 images."""
    error = (np.asarray(frame, np.float64) - np.asarray(clean, np.float64)) / 255
    return min(PSNR_CEILING, 10 * np.log10(1 / max(np.mean(error**2), 1e-300)))


def scene_drawer(scene: str, look: int):
    """The `draw_video` of `scene` (with the performer's `look`); `UserError` for an unknown scene or a look
    the scene does not have."""
    if scene not in SCENES:
        raise UserError(f"data.synthetic.scene: unknown scene {scene!r}; choose one of {sorted(SCENES)}")
    if look and scene == "many_looks":
        raise UserError(f"data.synthetic.look={look}: the many_looks scene draws its own looks")
    return partial(SCENES[scene], look=look) if look else SCENES[scene]


def ceiling_scores(psnr: list[float]) -> dict[str, float]:
    """A sequence's ceiling from its frames' PSNR (frame 0 is given): over the predicted frames, and Kaggle-style
    (frames 1-600; the pixels are already the rounded ones)."""
    return {"psnr_mean": float(np.mean(psnr[1:])), "kaggle_psnr": float(np.mean(psnr[KAGGLE_FRAMES]))}


def add_ceiling(
    root: str | Path,
    scene: str = "performer",
    look: int = 0,
    seed: int = 0,
    val_videos: int = 1,
    test_videos: int = 5,
    sequence_len: int = 630,
    height: int = 32,
    width: int = 64,
    **_,
) -> bool:
    """Write `root/ceiling.json` for a set generated before the file existed: its validation and test videos drawn
    again from their streams, and written only if every drawn frame equals the saved one (else the set was made with
    other settings, and nothing is written). Returns whether it wrote the file."""
    root = Path(root)
    draw = scene_drawer(scene, look)
    saved = {
        "val": lambda v, k: root / "val/val_img" / f"frame{v * sequence_len + k}.png",
        "test": lambda v, k: root / "test/test_gt" / str(v) / f"frame{k}.png",
    }
    ceiling = {"about": CEILING_ABOUT, "val": {}, "test": {}}
    for split, count in (("val", val_videos), ("test", test_videos)):
        for v in range(count):
            rng, psnr = np.random.default_rng([seed, SPLITS[split], v]), []
            for k, (frame, _, clean) in enumerate(draw(rng, sequence_len, (height, width))):
                path = saved[split](v, k)
                if not path.is_file() or not np.array_equal(np.asarray(Image.open(path)), np.asarray(frame)):
                    return False
                psnr.append(frame_psnr(frame, clean))
            ceiling[split][str(v)] = ceiling_scores(psnr)
    with atomic_open(root / CEILING_FILE) as f:
        json.dump(ceiling, f, indent=1)
    return True


def read_ceiling(root: Path, split: str) -> tuple[dict | None, str]:
    """The ceiling of `split` ("val" or "test") from `root/ceiling.json`, the mean over its sequences, and one line
    saying what it is; (None, why) where the set has none (the course's data has no clean render)."""
    path = Path(root) / CEILING_FILE
    if not path.is_file():
        return None, (
            f"no ceiling for {root}: only the package's synthetic sets record one ({CEILING_FILE}; to a set "
            f"generated before it, python -m cvae_video.prepare_data adds it)"
        )
    entries = list(json.loads(path.read_text())[split].values())
    ceiling = {k: float(np.mean([e[k] for e in entries])) for k in ("psnr_mean", "kaggle_psnr")}
    return ceiling, (
        f"the clean render, the ceiling ({split}, {len(entries)} whole sequence(s)): {ceiling['psnr_mean']:.2f} dB, "
        f"Kaggle-style {ceiling['kaggle_psnr']:.2f}"
    )


def generate(
    root: str | Path,
    scene: str = "performer",
    look: int = 0,
    seed: int = 0,
    train_videos: int = 38,
    train_video_len: int = 616,
    val_videos: int = 1,
    test_videos: int = 5,
    sequence_len: int = 630,
    height: int = 32,
    width: int = 64,
    workers: int | None = None,
) -> Path:
    """Write the whole data set under `root` (built in a temporary folder, then renamed into place).

    The defaults are the course's sizes: 38 x 616 = 23,408 training frames, one validation sequence and
    five test sequences of 630 frames. `look` picks the performer's look (`performer.look_of`: 0 is the course's).
    `workers` processes draw videos in parallel (None: one per core for a large set, else none).
    """
    draw = scene_drawer(scene, look)
    root = Path(root)
    tmp = root.with_name(f"{root.name}.partial-{os.getpid()}")  # one per process: parallel runs may all generate
    shutil.rmtree(tmp, ignore_errors=True)
    video = partial(_write_video, draw, seed, size=(height, width))  # one job per video, each its own stream
    jobs, scored = [], []  # scored: (split, sequence) of each job whose ceiling goes to ceiling.json
    for split, count, length in (("train", train_videos, train_video_len), ("val", val_videos, sequence_len)):
        images, labels = tmp / split / f"{split}_img", tmp / split / f"{split}_label"
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        jobs += [
            partial(video, split, v, length, frame_dir=images, label_dir=labels, first_index=v * length)
            for v in range(count)
        ]
        scored += [(split, v) if split == "val" else None for v in range(count)]
    starts = [v * train_video_len for v in range(train_videos)]
    (tmp / "train" / "segments.json").write_text(json.dumps({"starts": starts}))
    for i in range(test_videos):
        first, labels, truth = (tmp / "test" / sub / str(i) for sub in ("test_img", "test_label", "test_gt"))
        for d in (first, labels, truth):
            d.mkdir(parents=True)
        jobs.append(partial(video, "test", i, sequence_len, frame_dir=truth, label_dir=labels, first_frame_dir=first))
        scored.append(("test", i))
    frames = train_videos * train_video_len + (val_videos + test_videos) * sequence_len
    workers = workers or (os.cpu_count() or 1 if frames > 5000 else 1)  # a process costs ~1 s to start
    # Inside a worker of joblib's loky (a sweep's hydra/launcher=joblib) the start method is "loky", which a
    # spawned child cannot set again: draw in this process there.
    if workers == 1 or get_start_method(allow_none=True) not in (None, *get_all_start_methods()):
        results = [job() for job in jobs]
    else:  # spawn: the workers need neither torch nor the parent's threads
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            results = [future.result() for future in [pool.submit(job) for job in jobs]]
    ceiling = {"about": CEILING_ABOUT, "val": {}, "test": {}}
    for key, psnr in zip(scored, results):
        if key is not None:
            ceiling[key[0]][str(key[1])] = ceiling_scores(psnr)
    (tmp / CEILING_FILE).write_text(json.dumps(ceiling, indent=1))
    try:
        tmp.rename(root)
    except OSError:  # another process (a parallel run of a sweep) wrote the same set first
        if not root.is_dir():
            raise
        shutil.rmtree(tmp)
    return root


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default="data/performer_v1", help="folder to create (must not exist)")
    p.add_argument("--scene", default="performer", choices=sorted(SCENES))
    p.add_argument(
        "--look", type=int, default=0, help="the performer's look: 0 the course's, others drawn (held-out sets)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-videos", type=int, default=38)
    p.add_argument("--train-video-len", type=int, default=616)
    p.add_argument("--val-videos", type=int, default=1)
    p.add_argument("--test-videos", type=int, default=5)
    p.add_argument("--sequence-len", type=int, default=630)
    p.add_argument("--height", type=int, default=32, help="image height on disk (the loader resizes)")
    p.add_argument("--width", type=int, default=64, help="image width on disk")
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    a = p.parse_args(argv)
    if Path(a.root).exists():
        raise SystemExit(f"error: {a.root} already exists; remove it or pick another --root")
    root = generate(
        a.root,
        a.scene,
        a.look,
        a.seed,
        a.train_videos,
        a.train_video_len,
        a.val_videos,
        a.test_videos,
        a.sequence_len,
        a.height,
        a.width,
        a.workers,
    )
    print(f"wrote {root}")


if __name__ == "__main__":
    main()

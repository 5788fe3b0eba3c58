"""LightningDataModule for the LAB4 layout: clips for training, full sequences for validation and test.

The decoded images stay in memory as uint8 (23,410 x 3 x 32 x 64 frames is 144 MB) and become floats
in [0, 1] per batch. Training on a GPU with `num_workers: 0`, the training frames and poses are kept on
the GPU (`device_cache`), so batches never cross the PCIe bus. With `synthetic` settings (the keyword
arguments of `synthetic.generate`) the data set is generated in `prepare_data` when `root` does not exist yet and
lies in `generated_sets` (the folder where the package keeps its generated sets, `paths.data_dir`): a `root`
anywhere else that does not exist is an error, never a place to generate data (a mistyped path must not train
on a generated set). An existing `root` is read as it is, whatever the settings.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from cvae_video.data import lab4
from cvae_video.data.synthetic import CEILING_FILE, add_ceiling, generate


class Clips(Dataset):
    """Windows of `clip_len` frames, every `frame_step`-th frame, within each video (`lab4.clip_windows`):
    (frames, poses), each (T, 3, H, W). With `first_gap` > 0 a clip's first frame lies a random 1..first_gap
    frames (torch's generator: Lightning's seed) before its second: the gaps of a rollout from its frame 0, with
    the frames after it `frame_step` apart."""

    def __init__(
        self,
        frames: torch.Tensor,
        poses: torch.Tensor,
        starts: list[int],
        clip_len: int,
        fraction: float = 1.0,
        frame_step: int = 1,
        first_gap: int = 0,
    ):
        self.frames, self.poses, self.clip_len, self.frame_step = frames, poses, clip_len, frame_step
        self.first_gap = first_gap
        windows = lab4.clip_windows(starts, len(frames), clip_len, frame_step, first_gap)
        self.windows = windows[: max(1, round(len(windows) * fraction))] if windows else []

    def __len__(self) -> int:
        return len(self.windows)

    def to(self, device: torch.device) -> Clips:
        """Keep the uint8 frames and poses on `device` (a GPU: clips are then sliced and converted there)."""
        self.frames, self.poses = self.frames.to(device), self.poses.to(device)
        return self

    def __getitem__(self, i: int):
        first = self.windows[i]
        gap = int(torch.randint(1, self.first_gap + 1, ())) if self.first_gap else self.frame_step
        s = [first, *range(first + gap, first + gap + (self.clip_len - 1) * self.frame_step, self.frame_step)]
        return self.frames[s].float() / 255, self.poses[s].float() / 255


class TestSequences(Dataset):
    """Test sequences: id, first frame (1, 3, H, W), poses (T, 3, H, W) and, where kept, truth (T, 3, H, W)."""

    def __init__(self, sequences: list[dict], length: int):
        self.sequences, self.length = sequences, length

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, i: int) -> dict:
        seq = self.sequences[i]
        item = {
            "id": seq["id"],
            "first_frame": seq["first_frame"][None].float() / 255,
            "poses": seq["poses"][: self.length].float() / 255,
        }
        if seq["truth"] is not None:
            item["truth"] = seq["truth"][: self.length].float() / 255
        return item


class LAB4DataModule(L.LightningDataModule):
    def __init__(
        self,
        root: str,
        frame_H: int = 32,
        frame_W: int = 64,
        train_vi_len: int = 16,
        train_frame_step: int = 1,
        train_first_gap: int = 0,
        val_vi_len: int = 630,
        batch_size: int = 2,
        val_batch_size: int = 1,
        partial: float = 1.0,
        shuffle: bool = True,
        num_workers: int = 0,
        device_cache: bool = True,
        synthetic: dict | None = None,
        generated_sets: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.root = Path(root)
        self.train_set = self.val_set = self.test_set = None

    def in_generated_sets(self) -> bool:
        """Whether `root` is a synthetic set's place: synthetic settings given, inside `generated_sets`."""
        sets = self.hparams.generated_sets
        return (
            self.hparams.synthetic is not None
            and sets is not None
            and self.root.resolve().is_relative_to(Path(sets).resolve())
        )

    def generates_root(self) -> bool:
        """Whether `prepare_data` makes the set: a synthetic one, missing, and inside `generated_sets`."""
        return self.in_generated_sets() and not self.root.exists()

    def prepare_data(self) -> None:
        if self.generates_root():
            generate(self.root, **self.hparams.synthetic)
        elif self.in_generated_sets() and self.root.is_dir() and not (self.root / CEILING_FILE).exists():
            if add_ceiling(self.root, **self.hparams.synthetic):  # a set generated before ceiling.json existed
                print(f"data: added {self.root / CEILING_FILE} (the clean render's scores)")

    def check_root(self) -> None:
        if self.root.is_dir():
            return
        if self.root.exists():
            raise lab4.DataError(f"data.root {self.root} is a file, not a folder ({lab4.LAYOUT})")
        hint = "check the path (the course's data: data=lab4 data.root=/path/to/LAB4_Dataset)"
        if self.hparams.synthetic is not None and self.hparams.generated_sets is not None:
            hint += (
                f"; synthetic sets are generated only under paths.data_dir ({self.hparams.generated_sets}): "
                f"to make one here, python -m cvae_video.data.synthetic --root {self.root}"
            )
        raise lab4.DataError(f"data.root {self.root} does not exist: {hint}")

    def setup(self, stage: str | None = None) -> None:
        h = self.hparams
        self.check_root()
        if stage in ("fit", None) and self.train_set is None:
            frames, poses, starts = lab4.read_sequence_split(self.root, "train", h.frame_H, h.frame_W)
            self.train_set = Clips(
                frames, poses, starts, h.train_vi_len, h.partial, h.train_frame_step, h.train_first_gap
            )
            if len(self.train_set) == 0:
                longest = max(b - a for a, b in zip(starts, starts[1:] + [len(frames)]))
                span = lab4.clip_span(h.train_vi_len, h.train_frame_step, h.train_first_gap)
                gap = f", data.train_first_gap={h.train_first_gap}" if h.train_first_gap else ""
                raise lab4.DataError(
                    f"{self.root / 'train'}: the longest video has {longest} frames, fewer than a "
                    f"clip spans ({span}: data.train_vi_len={h.train_vi_len}, "
                    f"data.train_frame_step={h.train_frame_step}{gap})"
                )
            device = self.trainer.strategy.root_device if self.trainer is not None else None
            if h.device_cache and h.num_workers == 0 and device is not None and device.type == "cuda":
                self.train_set.to(device)  # 23,410 LAB4 frames and poses are 288 MB as uint8
        if stage in ("fit", "validate", None) and self.val_set is None:
            frames, poses, starts = lab4.read_sequence_split(self.root, "val", h.frame_H, h.frame_W)
            self.val_set = Clips(frames, poses, starts, h.val_vi_len)
            if len(self.val_set) == 0:
                raise lab4.DataError(
                    f"validation sequence {self.root / 'val'}: {len(frames)} frames, "
                    f"shorter than the rollout data.val_vi_len={h.val_vi_len}"
                )
        if stage in ("test", "predict", None) and self.test_set is None:
            sequences = lab4.read_test_split(self.root, h.frame_H, h.frame_W)
            for seq in sequences:
                if len(seq["poses"]) < h.val_vi_len:
                    raise lab4.DataError(
                        f"test sequence {seq['id']}: {len(seq['poses'])} pose images, "
                        f"shorter than data.val_vi_len={h.val_vi_len}"
                    )
            self.test_set = TestSequences(sequences, h.val_vi_len)

    def static_background(self, samples: int = 4096) -> torch.Tensor:
        """The per-pixel median of (up to `samples` evenly spaced) training frames, (3, H, W) in [0, 1]: for a fixed
        camera, the empty room without the camera's noise (the person moves on)."""
        frames = self.train_set.frames
        step = max(1, len(frames) // samples)
        return frames[::step].median(0).values.float().cpu() / 255

    def train_dataloader(self) -> DataLoader:
        batch_size = self.hparams.batch_size
        return DataLoader(
            self.train_set,
            batch_size=batch_size,
            shuffle=self.hparams.shuffle,
            drop_last=len(self.train_set) > batch_size,
            num_workers=self.hparams.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        # Its own generator: creating a loader's iterator draws a seed, which would otherwise come from the global
        # generator and shift what training draws next by how often the run validates.
        return DataLoader(
            self.val_set,
            batch_size=self.hparams.val_batch_size,
            num_workers=self.hparams.num_workers,
            generator=torch.Generator().manual_seed(0),
        )

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.test_set, batch_size=len(self.test_set), num_workers=self.hparams.num_workers)

    predict_dataloader = test_dataloader

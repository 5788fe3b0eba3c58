"""What the benchmark measures with and how it keeps its rows: `timed` (median seconds and peak memory of a
callable), `PeakMemory`, and `Bench`, the table of rows written to bench.json as each comes in."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import torch

from cvae_video.atomic import atomic_open


class PeakMemory:
    """Peak memory while a block runs: CUDA max allocated, or on CPU the process RSS sampled every 10 ms
    (which includes the interpreter and memory kept from earlier rows)."""

    def __init__(self, device: torch.device):
        self.device, self.mb = device, 0.0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()  # what earlier rows left cached is not this row's
            torch.cuda.reset_peak_memory_stats()
        else:
            self.running = True
            self.sampler = threading.Thread(target=self._sample, daemon=True)
            self.sampler.start()
        return self

    def _sample(self) -> None:
        page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        while self.running:
            with open("/proc/self/statm") as f:
                self.mb = max(self.mb, int(f.read().split()[1]) * page_mb)
            time.sleep(0.01)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self.running = False
            self.sampler.join()


def timed(fn, warmup: int, reps: int, device: torch.device) -> dict:
    """Median seconds of `reps` calls of fn after `warmup` calls, and the peak memory over all of them."""
    times = []
    with PeakMemory(device) as peak:
        for _ in range(warmup + reps):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times[warmup:]), "times": times, "peak_mb": round(peak.mb, 1)}


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


class Bench:
    """Collects rows, prints them as they come, and rewrites bench.json after each."""

    def __init__(self, args, device: torch.device):
        self.args, self.device, self.rows, self.skipped = args, device, [], []
        self.env = {
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "precision": args.precision,
            "time_chunk": args.time_chunk if args.time_chunk is not None else "by device",
            "layout": "NCHW" if args.nchw else "NHWC",
            "frame_size": args.frame_size,
        }
        print(" | ".join(f"{k} {v}" for k, v in self.env.items()))

    def add(self, kind: str, name: str, batch: int, frames: int, measure) -> dict | None:
        """Run `measure()` (a `timed` result, maybe with extra keys) into a row; a failure (out of memory, say)
        is recorded as a skipped row and the bench goes on."""
        try:
            result = measure()
        except Exception as err:  # noqa: BLE001 (any failure of one row must not cost the others)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return self.skip(f"{kind} {name}, batch {batch}", f"failed: {type(err).__name__}: {err}")
        predicted = batch * (frames - 1)
        row = {
            "kind": kind,
            "name": name,
            "batch": batch,
            "frames": frames,
            **result,
            "predicted_frames_per_s": predicted / result["seconds"],
            "times": [round(t, 5) for t in result["times"]],
        }
        baseline = self.find(
            "reference" if kind == "rollout" else "reference TF" if "TF" in name else "reference free", kind, batch
        )
        row["x_reference"] = row["seconds"] / baseline["seconds"] if baseline else None
        self.rows.append(row)
        x_reference = f"{row['x_reference']:.2f}" if row["x_reference"] is not None else "-"
        print(
            f"{kind:8s} {name:28s} {batch:5d} {frames:6d} {row['seconds']:10.4f} "
            f"{row['predicted_frames_per_s']:11.1f} {x_reference:>7s} {row['peak_mb']:9.0f}  {row.get('note', '')}",
            flush=True,
        )
        self.write()
        return row

    def skip(self, what: str, why: str) -> None:
        self.skipped.append({"row": what, "why": why})
        print(f"skipped  {what}: {why}", flush=True)
        self.write()
        return None

    def find(self, name: str, kind: str, batch: int) -> dict | None:
        return next((r for r in self.rows if (r["name"], r["kind"], r["batch"]) == (name, kind, batch)), None)

    def ratio(self, a: str, b: str, batch: int, kind: str = "train") -> float | None:
        ra, rb = self.find(a, kind, batch), self.find(b, kind, batch)
        return ra["seconds"] / rb["seconds"] if ra and rb else None

    def ratios(self, batch: int) -> dict:
        return {
            "lightning_over_plain": self.ratio("lightning free", "plain free", batch),
            "tf_over_reference": self.ratio("plain TF", "reference TF", batch),
            "free_over_reference": self.ratio("plain free", "reference free", batch),
        }

    def summary(self) -> dict:
        batches = self.args.batches
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(self.args).items()}
        out = {
            "env": self.env,
            "settings": settings,
            "ratios": self.ratios(batches[0]) if batches else {},
            "ratios_by_batch": {str(b): self.ratios(b) for b in batches},
            "rows": self.rows,
            "skipped": self.skipped,
        }
        if self.args.epoch_clips and batches:
            batch = max(batches)
            steps = self.args.epoch_clips // batch  # the training loader drops the last partial batch
            out["epoch_estimate"] = {
                "clips": self.args.epoch_clips,
                "batch": batch,
                "steps": steps,
                **{
                    f"{name.replace(' ', '_')}_s": row["seconds"] * steps
                    for name in ("reference TF", "reference free", "plain TF", "plain free")
                    if (row := self.find(name, "train", batch))
                },
            }
        return out

    def write(self) -> None:
        with atomic_open(self.args.out / "bench.json") as f:
            json.dump(self.summary(), f, indent=1)

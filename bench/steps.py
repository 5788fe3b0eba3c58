"""Speed of training steps and rollouts against the lab's reference loop, in one process: `make bench`.

    python -m bench.steps        # CPU, small sizes: batch 2 x 8 frames, rollouts of 16 frames (~2 min)
    bash bench/gpu_check.sh           # CUDA, the lab's sizes (see there)

Every row uses the template's widths (F128 L32 N12 D192), random frames and poses in [0, 1] and Adam, and
times the median of `--steps` steps after `--warmup` (the GPU synchronized around each). Rollout rows
predict `--rollout-frames - 1` frames from the first frame (z ~ N(0, I), no gradients, no autocast):

    rollout reference        the template's inference loop with the reference's modules, one frame at a time
    rollout project ...      `TemplateCVAE.unroll`: eager; (CUDA) replaying a CUDA graph per step, also with the
                             weights in bf16 (`bf16-true`: no casts in the graph); (--compiled-rollouts) through
                             `models.acceleration.CompiledSteps`
    train reference TF/free  `train_step` of the lab's reference loop (shared/reference/seed_model.py, loaded by
                             path), teacher forcing on (tfr=1) and off (tfr=0); always fp32, cudnn.benchmark off
    train plain TF / free    `TemplateCVAE.unroll` + `sequence_loss` + backward + clipping + Adam in a plain loop:
                             the work of `CVAEModule.training_step` (`--chunk-sweep`: other time chunks, layouts)
    train lightning free     the same step through `Trainer.fit` and the real `CVAEModule` (no logger,
                             checkpointing or progress bar), timed from batch end to batch end

Writes outputs/bench/bench.json (rewritten after every row, so a run cut short keeps what it measured) with
the rows, the ratios `lightning_over_plain`, `tf_over_reference`, `free_over_reference` (step times at the first
batch size; `ratios_by_batch` for each) and, with `--epoch-clips`, an epoch's time at the largest batch.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import time
from functools import partial
from pathlib import Path

import torch

from bench.measure import Bench, PeakMemory, timed
from bench.reference_loop import REFERENCE_MODEL_PATHS, load_reference_model, reference_rollout
from cvae_video.models.acceleration import CompiledSteps, CUDAGraphSteps, configure
from cvae_video.models.template import TemplateCVAE

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = dict(frame_dim=128, label_dim=32, noise_dim=12, fusion_dim=192)  # model=template
LR, CLIP = 1e-3, 1.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--precision",
        default="32-true",
        choices=["32-true", "bf16-mixed"],
        help="for this project's training rows (rollouts run float32, as CVAEModule.rollout; the reference "
        "loop always runs fp32)",
    )
    p.add_argument("--batches", type=int, nargs="*", default=[2], help="training batch sizes (none: no training rows)")
    p.add_argument("--frames", type=int, default=8, help="frames per training clip (the lab: 16)")
    p.add_argument("--frame-size", type=int, nargs=2, default=[32, 64], metavar=("H", "W"))
    p.add_argument(
        "--steps",
        type=int,
        default=5,
        help="timed steps per training row (median; with 3 the CPU ratios moved by ~10%%)",
    )
    p.add_argument("--warmup", type=int, default=1, help="untimed steps before them (at least 1)")
    p.add_argument("--time-chunk", type=int, default=None, help="speed.time_chunk (default: by device)")
    p.add_argument("--nchw", action="store_true", help="speed.channels_last=false (default: NHWC)")
    p.add_argument(
        "--chunk-sweep",
        type=int,
        nargs="*",
        default=[],
        help="extra plain TF/free rows at the largest batch for these time_chunk values, NCHW and NHWC",
    )
    p.add_argument("--rollout-frames", type=int, default=16, help="frames per rollout (the lab: 630)")
    p.add_argument("--rollout-batches", type=int, nargs="*", default=[1, 5], help="rollout batch sizes")
    p.add_argument("--rollout-reps", type=int, default=2, help="timed rollouts per row (after one untimed)")
    p.add_argument(
        "--compiled-rollouts",
        type=int,
        nargs="*",
        default=[],
        metavar="BATCH",
        help="also time rollouts at these batch sizes through torch.compile (models.acceleration.CompiledSteps; last)",
    )
    p.add_argument(
        "--epoch-clips",
        type=int,
        default=0,
        help="estimate an epoch of this many clips at the largest batch (the lab: 1463)",
    )
    p.add_argument("--reference-model", type=Path, default=None, help="seed_model.py (default: shared/reference/)")
    p.add_argument("--no-reference", action="store_true", help="skip the reference loop's rows")
    p.add_argument("--no-lightning", action="store_true", help="skip the Trainer.fit row")
    p.add_argument("--out", type=Path, default=ROOT / "outputs/bench", help="folder for bench.json")
    args = p.parse_args(argv)
    args.warmup = max(args.warmup, 1)
    return args


def precision_context(args, device: torch.device):
    """Autocast for this project's training rows, as Lightning's `precision` does it."""
    if args.precision == "bf16-mixed":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    return next(model.parameters()).dtype


def make_net(args, device: torch.device, **overrides) -> TemplateCVAE:
    """The template at the lab's widths, run as `--time-chunk` and `--nchw` say (eager rollouts: no fast steps)."""
    torch.manual_seed(0)
    settings = dict(time_chunk=args.time_chunk, channels_last=not args.nchw, cuda_graphs=False) | overrides
    return configure(TemplateCVAE(**WIDTHS), **settings).to(device)


def clip(batch: int, frames: int, args, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Random frames and poses in [0, 1], (B, T, 3, H, W) each."""
    g = torch.Generator().manual_seed(batch * 1000 + frames)
    shape = (batch, frames, 3, *args.frame_size)
    return torch.rand(shape, generator=g).to(device), torch.rand(shape, generator=g).to(device)


def plain_step(
    net: TemplateCVAE,
    opt: torch.optim.Optimizer,
    frames: torch.Tensor,
    poses: torch.Tensor,
    teacher_forcing: bool,
    precision,
    host_reads: bool = False,
) -> None:
    """The work of `CVAEModule.training_step` without Lightning: its forward pass (`net.training_loss`),
    backward, clip, step.

    host_reads: also read the gradient norm's finiteness on the host after the backward pass, as the module's
    NaN guard does (the read waits for the device to finish everything queued).
    """
    with precision:
        loss, _, _ = net.training_loss(frames, poses, beta=1.0, teacher_forcing=teacher_forcing)
    opt.zero_grad()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
    if host_reads:
        bool(torch.isfinite(norm))
    opt.step()


def lightning_seconds(net: TemplateCVAE, frames: torch.Tensor, poses: torch.Tensor, args, device) -> dict:
    """Free-running steps through `Trainer.fit` and the real CVAEModule; each step timed batch end to batch end,
    so the loop's own work between steps (fetching the batch, hooks, logging) counts."""
    import lightning as L
    from torch.utils.data import DataLoader

    from cvae_video.module import CVAEModule

    class BatchEnds(L.Callback):
        def __init__(self):
            self.ends = []

        def on_train_batch_end(self, *_):
            if device.type == "cuda":
                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())

    module = CVAEModule(
        net,
        optimizer=partial(torch.optim.Adam, lr=LR),
        scheduler=partial(torch.optim.lr_scheduler.ConstantLR, factor=1.0),
        grad_clip_val=CLIP,
    )
    module.beta, module.tfr = 1.0, 0.0  # free-running, as the plain row
    ends, batches = BatchEnds(), args.warmup + args.steps
    trainer = L.Trainer(
        accelerator=device.type,
        devices=1,
        precision=args.precision,
        max_epochs=1,
        limit_train_batches=batches,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        benchmark=torch.backends.cudnn.benchmark,
        callbacks=[ends],
    )
    with PeakMemory(device) as peak:
        # batch_size=None: the loader yields the (frames, poses) pair as it is, already on the device
        trainer.fit(module, train_dataloaders=DataLoader([(frames, poses)] * batches, batch_size=None))
    intervals = [b - a for a, b in zip(ends.ends, ends.ends[1:])][args.warmup - 1 :]
    return {"seconds": statistics.median(intervals), "times": intervals, "peak_mb": round(peak.mb, 1)}


def train_rows(bench: Bench, reference, batch: int, args, device) -> None:
    frames, poses = clip(batch, args.frames, args, device)
    run = partial(timed, warmup=args.warmup, reps=args.steps, device=device)

    def reference_row(tfr: float) -> dict:
        torch.manual_seed(0)
        m = reference.SeedVAE().to(device)
        opt = torch.optim.Adam(m.parameters(), LR)
        return run(lambda: reference.train_step(m, opt, frames, poses, tfr=tfr))

    def plain_row(teacher_forcing: bool, host_reads: bool = False, **overrides) -> dict:
        net = make_net(args, device, **overrides)
        opt = torch.optim.Adam(net.parameters(), LR)
        precision = precision_context(args, device)
        return run(lambda: plain_step(net, opt, frames, poses, teacher_forcing, precision, host_reads))

    if reference is not None:
        torch.backends.cudnn.benchmark = False  # the reference loop as it is
        bench.add("train", "reference TF", batch, args.frames, lambda: reference_row(1.0))
        bench.add("train", "reference free", batch, args.frames, lambda: reference_row(0.0))
    torch.backends.cudnn.benchmark = device.type == "cuda"  # as trainer=gpu (benchmark: true)
    sweep = args.chunk_sweep if batch == max(args.batches) else []
    variants = [("plain", {})] + [
        (f"plain chunk={k} {'NHWC' if nhwc else 'NCHW'}", dict(time_chunk=k, channels_last=nhwc))
        for k in sweep
        for nhwc in (False, True)
    ]
    for label, overrides in variants:
        bench.add("train", f"{label} TF", batch, args.frames, lambda o=overrides: plain_row(True, **o))
        bench.add("train", f"{label} free", batch, args.frames, lambda o=overrides: plain_row(False, **o))
    if device.type == "cuda":  # what the NaN guard's host reads cost where work is queued
        bench.add("train", "plain free +host reads", batch, args.frames, lambda: plain_row(False, host_reads=True))
    if args.no_lightning:
        return bench.skip(f"train lightning free, batch {batch}", "--no-lightning")
    try:
        import lightning  # noqa: F401
    except ImportError as err:
        return bench.skip(f"train lightning free, batch {batch}", f"Lightning not importable ({err})")
    row = bench.add(
        "train",
        "lightning free",
        batch,
        args.frames,
        lambda: lightning_seconds(make_net(args, device), frames, poses, args, device),
    )
    if row:
        row["x_plain"] = bench.ratio("lightning free", "plain free", batch)


def rollout_rows(bench: Bench, reference, batch: int, args, device, compiled: bool = False) -> None:
    """Rollouts at one batch size: the reference loop, this project's eager and (CUDA) CUDA-graph ones; or, with
    `compiled`, just the one through torch.compile."""
    frames, poses = clip(batch, args.rollout_frames, args, device)
    first = frames[:, :1]
    run = partial(timed, warmup=1, reps=args.rollout_reps, device=device)
    torch.backends.cudnn.benchmark = False  # the reference loop as it is
    net = make_net(args, device).eval()

    def reference_row() -> dict:
        torch.manual_seed(0)
        m = reference.SeedVAE().to(device).eval()
        return run(lambda: reference_rollout(m, first, poses))

    @torch.inference_mode()  # as Lightning's validation and predict loops
    def rollout(noise=None, model=net) -> torch.Tensor:
        """Without autocast, as `CVAEModule.rollout`: float32, or bf16 for a network cast to it."""
        dtype = model_dtype(model)
        return model.unroll(poses.to(dtype), first.to(dtype), use_posterior=False, teacher_forcing=False, noise=noise)[
            0
        ]

    def accelerated_row(enable, model=net) -> dict:
        """Time the rollout of `model` after `enable()` (whose first call captures or compiles: the untimed
        warm-up) and compare its frames with the eager ones of `net` for the same z."""
        noise = torch.randn(batch, args.rollout_frames - 1, WIDTHS["noise_dim"], *args.frame_size, device=device)
        eager = rollout(noise)
        enable()
        result = run(lambda: rollout(model=model))
        diff = (rollout(noise.to(model_dtype(model)), model).float() - eager).abs()  # rounding only
        return {
            **result,
            "setup_s": round(result["times"][0], 3),
            "max_abs_diff_vs_eager": float(diff.max()),
            "max_abs_diff_frame1": float(diff[:, 0].max()),
            "note": f"|x - eager| max {float(diff.max()):.2e} (frame 1: {float(diff[:, 0].max()):.2e}); "
            f"first call {result['times'][0]:.1f} s",
        }

    if compiled:
        torch.backends.cudnn.benchmark = device.type == "cuda"
        mode = "reduce-overhead" if device.type == "cuda" else "default"
        return bench.add(
            "rollout",
            f"project compiled ({mode})",
            batch,
            args.rollout_frames,
            lambda: accelerated_row(lambda: setattr(net, "fast_step", CompiledSteps(mode))),
        )
    if reference is not None:
        bench.add("rollout", "reference", batch, args.rollout_frames, reference_row)
    torch.backends.cudnn.benchmark = device.type == "cuda"
    bench.add("rollout", "project eager", batch, args.rollout_frames, lambda: run(rollout))
    if device.type != "cuda":
        return bench.skip(f"rollout project CUDA graph, batch {batch}", "CUDA graphs need a CUDA device")
    # Weights cast to bf16 once (Lightning's precision="bf16-true"). Timed first, while `net` is still eager:
    # its frames are the reference both rows compare with.
    bf16_net = copy.deepcopy(net).to(torch.bfloat16)
    bench.add(
        "rollout",
        "project CUDA graph bf16-true",
        batch,
        args.rollout_frames,
        lambda: accelerated_row(lambda: setattr(bf16_net, "fast_step", CUDAGraphSteps(bf16_net)), bf16_net),
    )
    bench.add(
        "rollout",
        "project CUDA graph",
        batch,
        args.rollout_frames,
        lambda: accelerated_row(lambda: setattr(net, "fast_step", CUDAGraphSteps(net))),
    )


def main(argv=None) -> dict:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but torch.cuda.is_available() is False")
    bench = Bench(args, device)
    reference = None if args.no_reference else load_reference_model(args.reference_model)
    if args.no_reference:
        bench.skip("reference rows", "--no-reference")
    elif reference is None:
        bench.skip(
            "reference rows", f"seed_model.py not found (looked for {args.reference_model or REFERENCE_MODEL_PATHS})"
        )
    print(
        f"{'kind':8s} {'row':28s} {'batch':>5s} {'frames':>6s} {'s/step':>10s} {'pred fr/s':>11s} "
        f"{'x ref':>7s} {'peak MB':>9s}  ({'CUDA max allocated' if device.type == 'cuda' else 'process RSS'})"
    )
    for batch in args.rollout_batches:
        rollout_rows(bench, reference, batch, args, device)
    for batch in args.batches:
        train_rows(bench, reference, batch, args, device)
    for batch in args.compiled_rollouts:  # last: compiling can take a minute
        rollout_rows(bench, reference, batch, args, device, compiled=True)
    summary = bench.summary()
    if args.batches:
        print(
            f"ratios (batch {args.batches[0]}): "
            + ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a" for k, v in summary["ratios"].items())
        )
    if "epoch_estimate" in summary:
        print(
            "epoch estimate: "
            + ", ".join(
                f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary["epoch_estimate"].items()
            )
        )
    print(f"wrote {args.out / 'bench.json'}")
    return summary


if __name__ == "__main__":
    main()

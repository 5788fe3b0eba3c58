"""Probe the template's first steps under the lab's recipe, and what happens when beta first rises.

A plain loop over `TemplateCVAE.unroll` and `sequence_loss` (the module's own functions): Adam, gradient clipping
(over all parameters, as the lab, or per network with --clip-per-network), batch 2 x 16 random training clips of
the default synthetic set, phases of (beta, teacher forcing, steps). Every `--eval-every` steps it rolls out
the first `--rollout` frames of the validation sequence with z from the prior and prints their mean PSNR beside
copy-first-frame's on the same frames. Used to find why the template died (docs/experiments.md, "The template under the
lab's recipe"); its logs are in bench/results/template_probe_2026-11-26/.

    python bench/template_probe.py --name C --width 64 --label-slope 0.01 --posterior-slope 0.01 \
        --phases 0:1:60,0.1:1:20
"""

import argparse
import json
import time
from pathlib import Path

import torch

from cvae_video.data import lab4
from cvae_video.data.datamodule import Clips
from cvae_video.metrics import psnr_per_frame
from cvae_video.models.sequence import sequence_loss
from cvae_video.models.template import TemplateCVAE

p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
p.add_argument("--name", required=True)
p.add_argument("--root", default="data/performer_v1")
p.add_argument("--width", type=int, default=128, help="frame_dim F; L = F / 4, D = 3 F / 2 (128: the template's)")
p.add_argument("--label-slope", type=float, default=0.01)
p.add_argument("--posterior-slope", type=float, default=0.01)
p.add_argument("--sigmoid", type=int, default=0, help="1: the generator ends in a sigmoid")
p.add_argument("--detach", type=int, default=0, help="1: the posterior's gradient does not reach the encoders")
p.add_argument("--clip-per-network", type=int, default=0, help="1: each network's gradient clipped on its own")
p.add_argument("--clip", type=float, default=1.0)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--phases", default="0:1:60,0.1:1:20", help="beta:teacher_forcing:steps, ...")
p.add_argument("--eval-every", type=int, default=30)
p.add_argument("--rollout", type=int, default=150, help="validation frames rolled out")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--threads", type=int, default=1)
args = p.parse_args()

torch.set_num_threads(args.threads)
torch.manual_seed(args.seed)
root = Path(args.root)
clips = Clips(*lab4.read_sequence_split(root, "train", 32, 64), 16)
val_frames, val_poses, _ = lab4.read_sequence_split(root, "val", 32, 64)
val_x = val_frames[: args.rollout].float()[None] / 255  # (1, T, 3, H, W)
val_p = val_poses[: args.rollout].float()[None] / 255
w = args.width
net = TemplateCVAE(
    frame_dim=w,
    label_dim=w // 4,
    noise_dim=12,
    fusion_dim=w * 3 // 2,
    label_slope=args.label_slope,
    posterior_slope=args.posterior_slope,
    output_sigmoid=bool(args.sigmoid),
)
if args.detach:
    posterior = net.posterior.forward
    net.posterior.forward = lambda frame_feat, pose_feat: posterior(frame_feat.detach(), pose_feat.detach())
networks = [net.frame_encoder, net.label_encoder, net.posterior, net.fusion, net.generator]
optimizer = torch.optim.Adam(net.parameters(), args.lr)
order = torch.randperm(len(clips), generator=torch.Generator().manual_seed(args.seed))
copy_first = psnr_per_frame(val_x[:, :1].expand_as(val_x[:, 1:]), val_x[:, 1:]).mean().item()


def evaluate(step: int, beta: float) -> None:
    net.eval()
    with torch.no_grad():
        torch.manual_seed(1234)
        preds, _ = net.unroll(val_p, val_x[:, :1], use_posterior=False, teacher_forcing=False)
        psnr = psnr_per_frame(preds.clamp(0, 1), val_x[:, 1:])[0]
    net.train()
    print(
        args.name,
        json.dumps(
            {
                "step": step,
                "beta": beta,
                "val_psnr": round(psnr.mean().item(), 2),
                "first10": round(psnr[:10].mean().item(), 2),
                "last50": round(psnr[-50:].mean().item(), 2),
                "copy_first": round(copy_first, 2),
            }
        ),
        flush=True,
    )


step, start = 0, time.time()
for phase in args.phases.split(","):
    beta, teacher_forcing, steps = float(phase.split(":")[0]), bool(int(phase.split(":")[1])), int(phase.split(":")[2])
    for _ in range(steps):
        first = (2 * step) % len(order)
        batch = [clips[int(i)] for i in order[first : first + 2]]
        frames, poses = torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])  # (2, 16, 3, H, W)
        preds, kls = net.unroll(poses, frames, use_posterior=True, teacher_forcing=teacher_forcing)
        loss, mse, kl = sequence_loss(preds, frames, kls, beta)
        optimizer.zero_grad()
        loss.backward()
        if args.clip_per_network:
            grad_norm = torch.stack(
                [torch.nn.utils.clip_grad_norm_(n.parameters(), args.clip) for n in networks]
            ).norm()
        else:
            grad_norm = torch.nn.utils.clip_grad_norm_(net.parameters(), args.clip)
        optimizer.step()
        step += 1
        if step % 10 == 0:
            print(
                args.name,
                f"step {step} beta {beta} tf {int(teacher_forcing)} mse {mse.item():.4f} kl {kl.item():.0f} "
                f"gn {grad_norm.item():.3g} {time.time() - start:.0f}s",
                flush=True,
            )
        if step % args.eval_every == 0:
            evaluate(step, beta)

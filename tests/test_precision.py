"""Mixed precision in the LightningModule: rollouts stay float32, and a training step casts each weight once."""
from functools import partial

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from cvae_video.module import CVAEModule
from cvae_video.networks import PoseCVAE


class CountCasts(TorchDispatchMode):
    """Counts dtype conversions (what autocast issues for every weight it casts)."""

    def __init__(self):
        super().__init__()
        self.casts = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.casts += func is torch.ops.aten._to_copy.default
        return func(*args, **(kwargs or {}))


def module():
    torch.manual_seed(0)
    net = PoseCVAE(frame_dim=16, label_dim=8, noise_dim=4, fusion_dim=16, time_chunk=1)
    return CVAEModule(net, optimizer=partial(torch.optim.Adam), scheduler=None)


def lightning_autocast():
    """Lightning's bf16-mixed autocast, as its MixedPrecision plugin opens it (cast cache off)."""
    return torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False)


def test_rollout_is_float32_inside_mixed_precision():
    m = module().eval()
    first, poses = torch.rand(2, 1, 3, 8, 16), torch.rand(2, 6, 3, 8, 16)
    torch.manual_seed(1)
    plain = m.rollout(first, poses)
    with lightning_autocast():
        torch.manual_seed(1)
        mixed = m.rollout(first, poses)
    assert mixed.dtype == torch.float32 and torch.equal(mixed, plain)


def test_training_unroll_casts_each_weight_once_per_step():
    m = module()
    frames, poses = torch.rand(2, 6, 3, 8, 16), torch.rand(2, 6, 3, 8, 16)
    counts = []
    for cache in (False, True):
        with lightning_autocast(), CountCasts() as counter:
            with m.weights_cast_once() if cache else torch.autocast("cpu", enabled=True, dtype=torch.bfloat16,
                                                                         cache_enabled=False):
                m.net.unroll(poses, frames, use_posterior=True, teacher_forcing=False)
        counts.append(counter.casts)
    uncached, cached = counts
    weights = sum(1 for p in m.parameters() if p.dim() > 1)
    # free-running over 5 steps with one call per step: every step's convolutions cast their weights again
    assert uncached > cached + 3 * weights
    assert m.weights_cast_once().__class__ is not torch.autocast   # outside autocast it is a no-op

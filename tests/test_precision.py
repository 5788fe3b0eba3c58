"""Mixed precision in the LightningModule: rollouts stay float32, and a training step casts each weight once,
so that through `Trainer.fit` it does the work of the plain loop."""

import contextlib
from functools import partial
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader

from cvae_video.errors import UserError
from cvae_video.models.acceleration import configure
from cvae_video.models.template import TemplateCVAE
from cvae_video.module import CVAEModule


class CountCasts(TorchDispatchMode):
    """Counts the tensor operations run (on a GPU: the kernels launched) and among them the dtype conversions
    (what autocast issues for every weight it casts)."""

    def __init__(self):
        super().__init__()
        self.casts = self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        self.casts += func is torch.ops.aten._to_copy.default
        return func(*args, **(kwargs or {}))


def net():
    torch.manual_seed(0)
    return configure(TemplateCVAE(frame_dim=16, label_dim=8, noise_dim=4, fusion_dim=16), time_chunk=1)


def module():
    return CVAEModule(
        net(),
        optimizer=partial(torch.optim.Adam, lr=1e-3),
        scheduler=partial(torch.optim.lr_scheduler.ConstantLR, factor=1.0),
    )


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
            with (
                m.weights_cast_once()
                if cache
                else torch.autocast("cpu", enabled=True, dtype=torch.bfloat16, cache_enabled=False)
            ):
                m.net.unroll(poses, frames, use_posterior=True, teacher_forcing=False)
        counts.append(counter.casts)
    uncached, cached = counts
    weights = sum(1 for p in m.parameters() if p.dim() > 1)
    # free-running over 5 steps with one call per step: every step's convolutions cast their weights again
    assert uncached > cached + 3 * weights
    assert isinstance(m.weights_cast_once(), contextlib.nullcontext)  # outside autocast: nothing to cache


class CountSecondStep(L.Callback):
    """Counts the operations of the second training step (the first one warms up)."""

    def __init__(self):
        self.counter, self.counting = CountCasts(), False

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == 1:
            self.counter.__enter__()
            self.counting = True

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.stop()

    def on_exception(self, trainer, module, exception):  # never leave the counting mode on for later tests
        self.stop()

    def stop(self):
        if self.counting:
            self.counter.__exit__(None, None, None)
            self.counting = False


def plain_step(net, opt, frames, poses, precision) -> None:
    """The work of `CVAEModule.training_step` in a plain loop: forward (free-running), backward, the NaN guard's
    host read, clip, step."""
    with precision:
        loss, _, _ = net.training_loss(frames, poses, beta=1.0, teacher_forcing=False)
    opt.zero_grad()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
    if bool(torch.isfinite(norm)):
        opt.step()


def test_a_bf16_step_through_trainer_fit_runs_the_operations_of_the_plain_loop():
    frames, poses = torch.rand(2, 6, 3, 8, 16), torch.rand(2, 6, 3, 8, 16)
    plain_net = net()
    opt = torch.optim.Adam(plain_net.parameters(), 1e-3)
    step = partial(plain_step, plain_net, opt, frames, poses)
    step(torch.autocast("cpu", dtype=torch.bfloat16))
    with CountCasts() as plain:
        step(torch.autocast("cpu", dtype=torch.bfloat16))
    m, counted = module(), CountSecondStep()
    m.beta, m.tfr = 1.0, 0.0  # free-running, as the plain step
    trainer = L.Trainer(
        accelerator="cpu",
        precision="bf16-mixed",
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[counted],
    )
    trainer.fit(m, DataLoader([(frames, poses)] * 3, batch_size=None))
    # The module's extras (a second gradient norm, logging, the teacher-forcing coin) are a few dozen
    # operations; a weight cast per convolution and time step made ~2,000 more (8,581 against 6,402).
    assert plain.ops < counted.counter.ops < plain.ops + 100


def test_fp16_mixed_precision_is_refused_before_training():
    m = module()
    m._trainer = SimpleNamespace(precision="16-mixed", loggers=[])  # a CUDA Trainer's value (CPU turns it to bf16)
    with pytest.raises(UserError, match="trainer.precision=16-mixed is not supported"):
        m.on_fit_start()
    m._trainer = SimpleNamespace(precision="bf16-mixed", loggers=[])
    m.on_fit_start()


def test_kl_is_float32_under_bf16_autocast():
    from cvae_video.models.sequence import kl_to_standard_normal

    torch.manual_seed(0)
    mu, logvar = (torch.randn(2, 5, 12, 16, 16).bfloat16() for _ in range(2))  # what a bf16 convolution returns
    exact = kl_to_standard_normal(mu.float(), logvar.float())  # (5,), of the same bf16 inputs
    with lightning_autocast():
        kl = kl_to_standard_normal(mu, logvar)
    assert kl.dtype == torch.float32
    assert torch.allclose(kl, exact, rtol=1e-6)


def test_scores_are_float32_under_bf16_autocast():
    """Validation scores inside a bf16-mixed Trainer: SSIM's filter in bf16 gave values outside [-1, 1]."""
    from cvae_video.metrics import psnr_per_frame, ssim_per_frame

    g = torch.Generator().manual_seed(0)
    truth = torch.rand(2, 5, 3, 32, 64, generator=g) * 0.1 + 0.7  # a light, low-contrast room
    pred = (truth + 0.02 * torch.randn(truth.shape, generator=g)).clamp(0, 1)
    exact = {score: score(pred, truth) for score in (psnr_per_frame, ssim_per_frame)}
    with lightning_autocast():
        for score, value in exact.items():
            assert torch.allclose(score(pred, truth), value, rtol=1e-5), score.__name__

"""The time loop computes what the plain loop over frames computes (one network call per frame and step, as the
course's template runs it), in float64, whatever the time chunking, memory layout, CUDA graphs or torch.compile."""

import copy

import pytest
import torch
from torch import nn

from cvae_video.models.acceleration import configure
from cvae_video.models.compositing import CompositingCVAE
from cvae_video.models.sequence import kl_to_standard_normal, sequence_loss
from cvae_video.models.template import StepwiseBatchNorm2d, TemplateCVAE

# Both designs at test sizes; the noise of a (B, T, 3, 8, 16) clip has shape (B, T - 1, *NOISE[design]).
DESIGNS = {
    "template": lambda **kw: TemplateCVAE(frame_dim=16, label_dim=8, noise_dim=4, fusion_dim=16, **kw),
    "compositing": lambda **kw: CompositingCVAE(
        frame_dim=8, label_dim=8, noise_dim=4, widths=(8, 16, 16), blocks=1, **kw
    ),
}
NOISE = {"template": (4, 8, 16), "compositing": (4, 2, 4)}


def per_frame_unroll(net, poses, frames, noise, teacher_forcing):
    """The plain time loop: one network call per frame and step, as the course's template runs it."""
    prev = net.frame_encoder(frames[:, 0])
    context = net.first_frame_context(prev, poses[:, 0])
    preds, kls = [], []
    for t in range(1, poses.shape[1]):
        pose = net.label_encoder(poses[:, t : t + 1])[:, 0]
        truth = net.frame_encoder(frames[:, t])
        mu, logvar = net.posterior(truth, pose)
        z = mu + noise[:, t - 1] * torch.exp(0.5 * logvar)
        kls.append(kl_to_standard_normal(mu, logvar))
        pred = net.decode(prev, pose, z, context)
        preds.append(pred)
        prev = truth if teacher_forcing else net.frame_encoder(pred)
    return torch.stack(preds, 1), torch.stack(kls)


def loss_and_grads(net, unroll, frames):
    preds, kls = unroll()
    loss, _, _ = sequence_loss(preds, frames, kls, beta=0.5)
    net.zero_grad()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in net.named_parameters()}, preds.detach()


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("teacher_forcing", [True, False])
@pytest.mark.parametrize("time_chunk", [1, 2, 0])
def test_chunked_step_gives_the_per_frame_loss_gradients_and_batchnorm_statistics(design, teacher_forcing, time_chunk):
    torch.manual_seed(0)
    base = DESIGNS[design]().double().train()
    frames, poses = torch.rand(2, 6, 3, 8, 16).double(), torch.rand(2, 6, 3, 8, 16).double()
    noise = torch.randn(2, 5, *NOISE[design]).double()

    ref = copy.deepcopy(base)
    want = loss_and_grads(ref, lambda: per_frame_unroll(ref, poses, frames, noise, teacher_forcing), frames)
    net = configure(copy.deepcopy(base), time_chunk=time_chunk, channels_last=False)
    got = loss_and_grads(net, lambda: net.unroll(poses, frames, True, teacher_forcing, noise=noise), frames)

    torch.testing.assert_close(got[0], want[0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got[2], want[2], rtol=1e-10, atol=1e-12)
    for name in want[1]:
        torch.testing.assert_close(got[1][name], want[1][name], rtol=1e-8, atol=1e-12, msg=name)
    for name, buffer in ref.named_buffers():  # BatchNorm running statistics: the same 5 updates, in order
        torch.testing.assert_close(dict(net.named_buffers())[name], buffer, rtol=1e-10, atol=1e-12, msg=name)


def test_float32_chunked_teacher_forced_step_matches_to_float_tolerance():
    torch.manual_seed(0)
    net = configure(TemplateCVAE(frame_dim=16, label_dim=8, noise_dim=4, fusion_dim=16), time_chunk=0)
    frames, poses, noise = torch.rand(2, 5, 3, 8, 16), torch.rand(2, 5, 3, 8, 16), torch.randn(2, 4, 4, 8, 16)
    ref = copy.deepcopy(net)
    want = loss_and_grads(ref, lambda: per_frame_unroll(ref, poses, frames, noise, True), frames)
    got = loss_and_grads(net, lambda: net.unroll(poses, frames, True, True, noise=noise), frames)
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
    for name in want[1]:
        torch.testing.assert_close(got[1][name], want[1][name], rtol=1e-4, atol=1e-5, msg=name)


def test_stepwise_batchnorm_equals_one_plain_call_per_step():
    torch.manual_seed(0)
    stepwise, plain = StepwiseBatchNorm2d(3).double(), nn.BatchNorm2d(3).double()
    with torch.no_grad():
        stepwise.weight.uniform_(0.5, 2), stepwise.bias.uniform_(-1, 1)
    plain.load_state_dict(stepwise.state_dict())
    x = torch.randn(4, 5, 3, 6, 7).double() * 3 + 1  # (B, S, C, H, W)
    y = stepwise(x.flatten(0, 1), steps=5).unflatten(0, (4, 5))
    want = torch.stack([plain(x[:, s]) for s in range(5)], 1)
    torch.testing.assert_close(y, want)
    for name, buffer in plain.named_buffers():
        torch.testing.assert_close(dict(stepwise.named_buffers())[name], buffer, msg=name)
    stepwise.eval(), plain.eval()
    torch.testing.assert_close(stepwise(x.flatten(0, 1), steps=5), plain(x.flatten(0, 1)))


def test_kl_per_step_of_a_sequence_equals_the_per_frame_formula():
    mu, logvar = torch.randn(2, 3, 4, 5, 6), torch.randn(2, 3, 4, 5, 6)
    want = torch.stack([kl_to_standard_normal(mu[:, t], logvar[:, t]) for t in range(3)])
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), want)


@pytest.mark.parametrize("design", DESIGNS)
def test_rollout_results_do_not_depend_on_the_chunk_size_or_layout(design):
    torch.manual_seed(0)
    base = DESIGNS[design]().eval()
    first, poses, noise = torch.rand(2, 1, 3, 8, 16), torch.rand(2, 7, 3, 8, 16), torch.randn(2, 6, *NOISE[design])
    outs = []
    for time_chunk, channels_last in [(1, False), (0, False), (3, True)]:
        net = configure(DESIGNS[design](), time_chunk=time_chunk, channels_last=channels_last).eval()
        net.load_state_dict(base.state_dict())
        with torch.no_grad():
            outs.append(net.unroll(poses, first, use_posterior=False, teacher_forcing=False, noise=noise)[0])
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="CUDA graphs need a CUDA device (bench/gpu_check.sh "
    "compares the captured and the eager rollout on the GPU and records the difference)",
)
@pytest.mark.parametrize("design", DESIGNS)
def test_captured_rollout_gives_the_eager_frames(design):
    torch.manual_seed(0)
    net = DESIGNS[design]().cuda().eval()
    first, poses = torch.rand(2, 1, 3, 8, 16).cuda(), torch.rand(2, 9, 3, 8, 16).cuda()
    noise = torch.randn(2, 8, *NOISE[design]).cuda()
    with torch.no_grad():
        eager = net.unroll(poses, first, False, False, noise=noise)[0]
        configure(net, cuda_graphs=True)
        captured = [net.unroll(poses, first, False, False, noise=noise)[0] for _ in range(2)]  # capture, replay
    for out in captured:
        torch.testing.assert_close(out, eager, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_compiled_rollout_gives_the_eager_frames():
    torch.manual_seed(0)
    net = TemplateCVAE(frame_dim=16, label_dim=8, noise_dim=4, fusion_dim=16).eval()
    first, poses, noise = torch.rand(2, 1, 3, 8, 16), torch.rand(2, 6, 3, 8, 16), torch.randn(2, 5, 4, 8, 16)
    with torch.inference_mode():
        eager = net.unroll(poses, first, False, False, noise=noise)[0]
        configure(net, compile="default")  # on CPU; bench/gpu_check.sh runs "reduce-overhead" on CUDA
        compiled = [net.unroll(poses, first, False, False, noise=noise)[0] for _ in range(2)]
    for out in compiled:
        torch.testing.assert_close(out, eager, rtol=1e-4, atol=1e-4)

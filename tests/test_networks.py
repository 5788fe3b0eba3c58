import pytest
import torch
import torch.nn.functional as F

from cvae_video.models.compositing import CompositingCVAE
from cvae_video.models.sequence import gaussian_kl, kl_to_standard_normal
from cvae_video.models.template import DepthConvBlock, TemplateCVAE


def narrow_template(**settings):
    torch.manual_seed(0)
    return TemplateCVAE(frame_dim=16, label_dim=8, noise_dim=4, fusion_dim=16, **settings)


def compositing(**settings):
    torch.manual_seed(0)
    return CompositingCVAE(frame_dim=8, label_dim=8, noise_dim=4, widths=(8, 16, 16), blocks=1, **settings)


def encoder_inputs(net, **unroll_kwargs):
    """Run `unroll`, recording every frame passed to the frame encoder."""
    seen = []
    handle = net.frame_encoder.register_forward_hook(lambda mod, args, out: seen.append(args[0].detach()))
    preds, kls = net.unroll(**unroll_kwargs)
    handle.remove()
    return seen, preds, kls


@pytest.mark.parametrize("design", [narrow_template, compositing])
@pytest.mark.parametrize("teacher_forcing", [True, False])
def test_shapes(design, teacher_forcing):
    net = design()
    frames, poses = torch.rand(2, 5, 3, 8, 16), torch.rand(2, 5, 3, 8, 16)
    preds, kls = net.unroll(poses, frames, use_posterior=True, teacher_forcing=teacher_forcing)
    assert preds.shape == (2, 4, 3, 8, 16) and kls.shape == (4,)
    if design is compositing:  # a blend of frames and colours; the template's generator is linear, as the lab's
        assert preds.min() >= 0 and preds.max() <= 1


def test_compositing_latent_is_at_quarter_resolution():
    net = compositing()
    mu, logvar = net.posterior(torch.rand(2, 8, 8, 16), torch.rand(2, 8, 8, 16))
    assert mu.shape == logvar.shape == (2, 4, 2, 4)


@pytest.mark.parametrize("source", [0, 1])
def test_compositing_copies_the_first_or_previous_frame_where_its_weight_wins(source):
    """Source logits that pick frame 0 (or the previous frame) everywhere give that frame, exactly to float."""
    net = compositing().eval()
    with torch.no_grad():
        net.generator.head.weight.zero_()
        net.generator.head.bias.copy_(
            torch.tensor([0.0] * 3 + [100.0 if s == source else 0.0 for s in range(4)] + [0.0] * 2)
        )
    frames, poses = torch.rand(1, 4, 3, 8, 16), torch.rand(1, 4, 3, 8, 16)
    with torch.no_grad():
        preds, _ = net.unroll(poses, frames, use_posterior=False, teacher_forcing=True)
    expected = frames[:, :1].expand(-1, 3, -1, -1, -1) if source == 0 else frames[:, :3]
    torch.testing.assert_close(preds, expected)


def test_compositing_paints_the_room_it_was_given_where_the_room_wins():
    net = CompositingCVAE(8, 8, 4, (8, 8, 8), 1, sources=("first", "paint", "parts", "room"), room_size=(8, 16)).eval()
    room = torch.rand(3, 8, 16)
    net.set_room(room)
    with torch.no_grad():
        net.generator.head.weight.zero_()
        net.generator.head.bias.copy_(torch.tensor([0.0] * 6 + [100.0] + [0.0] * 2))  # the 4th logit: room
        preds, _ = net.unroll(torch.rand(2, 4, 3, 8, 16), torch.rand(2, 1, 3, 8, 16), False, False)
    torch.testing.assert_close(preds, room.expand(2, 3, -1, -1, -1))
    assert "room" in net.state_dict()  # kept in checkpoints, never trained
    assert all(p.shape != (1, 3, 8, 16) for p in net.parameters())
    with pytest.raises(ValueError, match="background"):
        net.set_room(torch.rand(3, 16, 32))


def test_teacher_forcing_feeds_ground_truth_and_free_running_feeds_predictions():
    net = narrow_template()
    net.time_chunk = 1  # one encoder call per frame, so the hook sees each frame on its own
    frames, poses = torch.rand(2, 5, 3, 8, 16), torch.rand(2, 5, 3, 8, 16)
    seen, _, _ = encoder_inputs(net, poses=poses, frames=frames, use_posterior=True, teacher_forcing=True)
    assert len(seen) == 5 and all(torch.equal(s, frames[:, t]) for t, s in enumerate(seen))

    seen, preds, _ = encoder_inputs(net, poses=poses, frames=frames, use_posterior=True, teacher_forcing=False)
    previous_inputs = [s for s in seen if not any(torch.equal(s, frames[:, t]) for t in range(5))]
    assert len(previous_inputs) == 3  # outputs 1..3 re-encoded as the previous frame of steps 2..4
    assert all(torch.equal(p, preds[:, t]) for t, p in enumerate(previous_inputs))


@pytest.mark.parametrize("design", [narrow_template, compositing])
def test_inference_needs_only_the_first_frame_and_samples_the_prior(design):
    net = design().eval()
    poses = torch.rand(1, 6, 3, 8, 16)
    first = torch.rand(1, 1, 3, 8, 16)
    with torch.no_grad():
        a, kls = net.unroll(poses, first, use_posterior=False, teacher_forcing=False)
        b, _ = net.unroll(poses, first, use_posterior=False, teacher_forcing=False)
    assert a.shape == (1, 5, 3, 8, 16) and torch.all(kls == 0)
    assert not torch.equal(a, b)  # a new z each rollout


def test_kl_formula():
    mu, logvar = torch.zeros(2, 4, 3, 3), torch.zeros(2, 4, 3, 3)
    assert kl_to_standard_normal(mu, logvar).item() == 0.0
    mu = torch.ones(2, 4, 3, 3)
    assert torch.isclose(kl_to_standard_normal(mu, logvar), torch.tensor(0.5 * 36))  # 0.5 * sum(mu^2) / B


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu_q, logvar_q, mu_p, logvar_p = (torch.randn(3, 5, 4, 2, 6) for _ in range(4))  # (B, T, N, h, w)
    q = torch.distributions.Normal(mu_q, torch.exp(0.5 * logvar_q))
    p = torch.distributions.Normal(mu_p, torch.exp(0.5 * logvar_p))
    expected = torch.distributions.kl_divergence(q, p).sum(dim=(0, 2, 3, 4)) / 3  # per step, batch mean
    assert torch.allclose(gaussian_kl(mu_q, logvar_q, mu_p, logvar_p), expected, rtol=1e-5)
    zeros = torch.zeros_like(mu_q)  # against N(0, I) it is the lab's formula
    assert torch.allclose(gaussian_kl(mu_q, logvar_q, zeros, zeros), kl_to_standard_normal(mu_q, logvar_q), rtol=1e-5)


@pytest.mark.parametrize("design", [narrow_template, compositing])
def test_learned_prior_is_trained_against_and_sampled_from(design):
    net = design(prior="learned")
    frames, poses = torch.rand(2, 5, 3, 8, 16), torch.rand(2, 5, 3, 8, 16)
    _, kls = net.unroll(poses, frames, use_posterior=True, teacher_forcing=False)
    kls.sum().backward()  # KL(q || p) reaches the prior's weights
    assert all(
        p.grad is not None and p.grad.abs().sum() > 0
        for p in net.learned_prior.parameters()
        if p.requires_grad and p.dim() > 1
    )
    net.eval()
    calls = []
    handle = net.learned_prior.register_forward_hook(lambda mod, args, out: calls.append(args))
    with torch.no_grad():
        a, kls = net.unroll(
            poses,
            frames[:, :1],
            use_posterior=False,
            teacher_forcing=False,
            noise=torch.zeros(2, 4, 4, 8 // net.latent_scale, 16 // net.latent_scale),
        )
    handle.remove()
    assert len(calls) == 4 and torch.all(kls == 0)  # one prior draw per predicted frame
    fixed = design()  # same weights but for the prior: z = 0 there, mu_p here
    fixed.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("learned_prior.")})
    with torch.no_grad():
        b, _ = fixed.eval().unroll(
            poses,
            frames[:, :1],
            use_posterior=False,
            teacher_forcing=False,
            noise=torch.zeros(2, 4, 4, 8 // net.latent_scale, 16 // net.latent_scale),
        )
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("design", [narrow_template, compositing])
def test_the_learned_prior_reads_the_previous_frame(design):
    """p(z_t | ...) follows frame t-1 (a door left open), also where the decoder reads no previous frame."""
    net = design(prior="learned").eval()
    frames, poses = torch.rand(1, 4, 3, 8, 16), torch.rand(1, 4, 3, 8, 16)
    changed = frames.clone()
    changed[:, 1] = 1 - changed[:, 1]  # frame 1: the previous frame of step 2
    with torch.no_grad():
        _, _, prior_mu, _ = net.latent_moments(frames, poses)
        _, _, changed_mu, _ = net.latent_moments(changed, poses)
    assert torch.equal(prior_mu[:, 0], changed_mu[:, 0]) and torch.equal(prior_mu[:, 2], changed_mu[:, 2])
    assert not torch.allclose(prior_mu[:, 1], changed_mu[:, 1])


def test_an_unknown_prior_is_refused():
    with pytest.raises(ValueError, match="prior must be one of"):
        narrow_template(prior="lerned")


def test_the_template_at_the_labs_widths_has_the_courses_parameter_count():
    """The course's five networks at F, L, N, D = 128, 32, 12, 192 have 1,585,620 parameters (its template's
    `modules/`, counted in a session; the course's code is not vendored here)."""
    net = TemplateCVAE()
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in net.named_children()}
    assert counts == {
        "frame_encoder": 193_568,
        "label_encoder": 16_832,
        "posterior": 8_289,
        "fusion": 617_768,
        "generator": 749_163,
    }
    assert sum(counts.values()) == 1_585_620


def test_the_depthwise_block_is_the_courses_written_out_by_hand():
    """DepthConvBlock(c_in, c_out) = y + W_out (a * LeakyReLU_0.1(b)), with (a, b) the halves of W_expand y and
    y = conv2(dw(LeakyReLU_0.01(conv1 x))) + skip x: the template's DepthConv followed by its gated ConvFFN."""
    torch.manual_seed(0)
    block = DepthConvBlock(4, 6).double()
    for p in block.parameters():
        torch.nn.init.normal_(p)
    x = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    conv1, _, depthwise, conv2 = block.depth
    y = F.conv2d(
        F.leaky_relu(F.conv2d(x, conv1.weight, conv1.bias), 0.01), depthwise.weight, depthwise.bias, padding=1, groups=4
    )
    y = F.conv2d(y, conv2.weight, conv2.bias) + F.conv2d(x, block.skip.weight, block.skip.bias)
    a, b = F.conv2d(y, block.ffn.expand.weight, block.ffn.expand.bias).split(12, dim=1)
    expected = y + F.conv2d(a * F.leaky_relu(b, 0.1), block.ffn.project.weight, block.ffn.project.bias)
    torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-10)

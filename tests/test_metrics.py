import math

import torch

from cvae_video.metrics import PerFrameMean, psnr_per_frame, ssim_per_frame


def test_psnr_is_per_sample_and_per_frame():
    torch.manual_seed(0)
    target = torch.rand(2, 3, 3, 8, 16)
    noise = torch.stack([torch.full_like(target[0], 0.01), torch.full_like(target[1], 0.2)])
    pred = (target + noise * torch.randn_like(target)).clamp(0, 1)
    got = psnr_per_frame(pred, target)
    assert got.shape == (2, 3)
    for b in range(2):
        for t in range(3):
            mse = ((pred[b, t] - target[b, t]) ** 2).mean().item()
            assert math.isclose(got[b, t].item(), 10 * math.log10(1.0 / mse), rel_tol=1e-5)
    batch_mse_psnr = 10 * math.log10(1.0 / ((pred - target) ** 2).mean().item())  # the lab's bug
    assert abs(got.mean().item() - batch_mse_psnr) > 1.0


def test_ssim_per_frame_is_one_for_identical_frames_and_lower_otherwise():
    torch.manual_seed(0)
    x = torch.rand(2, 2, 3, 16, 16)
    assert torch.allclose(ssim_per_frame(x, x), torch.ones(2, 2), atol=1e-5)
    y = x.clone()
    y[1] = torch.rand_like(y[1])
    s = ssim_per_frame(y, x)
    assert torch.allclose(s[0], torch.ones(2), atol=1e-5) and (s[1] < 0.5).all()


def test_per_frame_mean_averages_over_samples():
    m = PerFrameMean()
    m.update(torch.tensor([[1.0, 2.0, 3.0]]))
    m.update(torch.tensor([[3.0, 4.0, 5.0], [5.0, 6.0, 7.0]]))
    assert torch.allclose(m.compute(), torch.tensor([3.0, 4.0, 5.0]))

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


def test_kaggle_psnr_scores_rounded_pixels_of_frames_1_to_600_only():
    from cvae_video.metrics import kaggle_psnr

    torch.manual_seed(0)
    truth = torch.randint(0, 256, (2, 630, 3, 4, 8)).float() / 255
    video = truth + 0.3 / 255  # rounds back to the truth: no error on the rounded pixels
    video[:, 0] = 0.0  # frame 0 is given, not scored
    video[:, 601:] = 1.0  # frames 601-629 are not scored
    video[1, 1:601] = (truth[1, 1:601] + 2 / 255).clamp(0, 1)
    got = kaggle_psnr(video, truth)
    assert got.shape == (2,) and got[0] == 100.0  # the ceiling, not infinity
    errors = ((video[1, 1:601] * 255).round() - truth[1, 1:601] * 255) ** 2  # what the scorer sees
    expected = (10 * torch.log10(255**2 / errors.mean(dim=(1, 2, 3)))).mean()
    assert math.isclose(got[1].item(), expected.item(), rel_tol=1e-5)

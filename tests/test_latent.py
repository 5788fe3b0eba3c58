"""The diagnostics of what z carries (cvae_video/latent.py) on posteriors built by hand."""

import torch

from cvae_video.latent import active_units, diagnostics
from cvae_video.models.sequence import gaussian_kl


def test_active_units_counts_the_channels_whose_mean_moves_with_the_data():
    """5 of 8 channels used: their posterior means vary over 200 data points (std 0.5); the other 3 sit at the prior
    (mean 0 up to noise of std 0.05: variance 0.0025, under the threshold of 0.01)."""
    torch.manual_seed(0)
    mu = torch.randn(200, 8, 2, 3) * 0.05
    mu[:, [0, 2, 3, 5, 7]] = torch.randn(200, 5, 2, 3) * 0.5
    assert active_units(mu).tolist() == [6, 0, 6, 6, 0, 6, 0, 6]


def test_diagnostics_split_the_trainings_kl_by_step_and_channel():
    torch.manual_seed(0)
    mu, logvar = torch.randn(2, 5, 4, 2, 3), torch.randn(2, 5, 4, 2, 3) * 0.3
    prior_mu, prior_logvar = torch.randn(2, 5, 4, 2, 3), torch.randn(2, 5, 4, 2, 3) * 0.3
    d = diagnostics(mu, logvar, prior_mu, prior_logvar)
    per_step = gaussian_kl(mu, logvar, prior_mu, prior_logvar)  # (5,): the training loss's KL of each step
    torch.testing.assert_close(torch.tensor(d["kl_per_step"]), per_step)
    assert abs(d["kl"] - per_step.mean().item()) < 1e-5
    assert abs(sum(d["kl_per_channel"]) - d["kl"]) < 1e-4
    assert d["units"] == 4 * 2 * 3 and d["active_units"] == sum(d["active_per_channel"])


def test_a_collapsed_posterior_has_no_active_units_and_no_kl():
    mu, logvar = torch.zeros(1, 50, 3, 4, 4), torch.zeros(1, 50, 3, 4, 4)
    d = diagnostics(mu, logvar, torch.zeros_like(mu), torch.zeros_like(logvar))
    assert d["active_units"] == 0 and d["kl"] == 0.0 and d["kl_per_channel"] == [0.0, 0.0, 0.0]

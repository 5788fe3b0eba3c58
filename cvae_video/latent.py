"""What z carries: diagnostics of a posterior over the steps of true sequences.

A *unit* is one element of the latent (a channel at one position of the spatial latent). A unit is *active*
(Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016) when the variance over the data of
its posterior mean, Var_x(E_q(z|x)[z]), exceeds `ACTIVE_THRESHOLD`; the data here are the predicted frames of the
sequences given. A posterior that has collapsed onto its prior has no active units and a KL near 0.
"""

from __future__ import annotations

import torch

from cvae_video.models.sequence import gaussian_kl_terms

ACTIVE_THRESHOLD = 0.01


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> torch.Tensor:
    """mu (D, N, h, w), the posterior means of D data points -> (N,) the active units of each channel."""
    return (mu.to(torch.float32).var(0, unbiased=False) > threshold).sum((1, 2))


def diagnostics(mu: torch.Tensor, logvar: torch.Tensor, prior_mu: torch.Tensor, prior_logvar: torch.Tensor) -> dict:
    """The posterior's moments and its prior's, each (B, T, N, h, w) over B sequences of T predicted frames ->

    kl: KL(q || p) summed over the latent, the mean over frames (the training loss's KL term per frame);
    kl_per_step (T,): summed over the latent, the mean over sequences; kl_per_channel (N,): summed over
    positions, the mean over frames; active_units and units (counts), active_per_channel (N,).
    """
    terms = gaussian_kl_terms(mu, logvar, prior_mu, prior_logvar)  # (B, T, N, h, w)
    per_frame = terms.sum((2, 3, 4))  # (B, T)
    per_channel = active_units(mu.flatten(0, 1))  # (N,)
    return {
        "kl": per_frame.mean().item(),
        "kl_per_step": per_frame.mean(0).tolist(),
        "kl_per_channel": terms.sum((3, 4)).mean((0, 1)).tolist(),
        "active_units": int(per_channel.sum()),
        "units": mu[0, 0].numel(),
        "active_per_channel": per_channel.tolist(),
    }

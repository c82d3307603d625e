"""Noise-estimate compositions: functions that turn a `Denoiser` into ε̂(x_t, t) for the sampler.

The network may predict ε, x₀ or v; `model_noise_estimate` converts to ε̂ so solvers see one thing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from difflab.diffusion.objectives import to_eps
from difflab.diffusion.sampling import NoiseEstimate
from difflab.errors import UserError

ConditionalEstimate = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


def model_noise_estimate(
    model: torch.nn.Module, objective: str, alphas_cumprod: torch.Tensor, *, max_batch: int = 128
) -> ConditionalEstimate:
    """ε̂(x_t, t, cond) from a network trained on `objective`.

    The forward runs in micro-batches of `max_batch`: on CPUs, small U-Nets run 2-3x faster per image
    at 128 than at 1,000 (activations stay in cache), and results do not depend on the batch split.
    """

    def forward(x, t, cond):
        if x.shape[0] <= max_batch:
            return model(x, t, cond)
        parts = zip(x.split(max_batch), t.split(max_batch), cond.split(max_batch) if cond is not None else [None] * x.shape[0])
        return torch.cat([model(*p) for p in parts])

    def estimate(x, t, cond=None):
        return to_eps(objective, forward(x, t, cond), x, t, alphas_cumprod)

    return estimate


def classifier_free(estimate: ConditionalEstimate, cond: torch.Tensor | None, null: torch.Tensor | None, scale: float) -> NoiseEstimate:
    """CFG (Ho & Salimans 2022): ε_u + w (ε_c − ε_u), both branches in one batched forward.

    `scale` w = 1 is the plain conditional estimate (one forward), w = 0 the unconditional one.
    """
    if scale < 0:
        raise UserError(f"guidance scale must be >= 0, got {scale}")
    if cond is None or scale == 1.0:
        return lambda x, t: estimate(x, t, cond)
    if scale == 0.0:
        return lambda x, t: estimate(x, t, null)

    def guided(x, t):
        both = estimate(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, null]))  # (2B, C, H, W)
        eps_c, eps_u = both.chunk(2)
        return eps_u + scale * (eps_c - eps_u)

    return guided

"""The forward process and the three training targets (ε, x₀, v) with exact conversions.

With a_t = sqrt(ᾱ_t), s_t = sqrt(1 - ᾱ_t):
  x_t = a_t x₀ + s_t ε                  (forward process)
  v   = a_t ε - s_t x₀                  (Salimans & Ho 2022, sec. 4)
so x₀ = a_t x_t - s_t v and ε = s_t x_t + a_t v. All functions broadcast ᾱ over `(B, C, H, W)`.
"""

from __future__ import annotations

import torch

from difflab.errors import UserError

OBJECTIVES = ("eps", "x0", "v")


def _coefs(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor):
    abar = alphas_cumprod.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.ndim - 1)))  # (B,1,1,1)
    return abar.sqrt(), (1.0 - abar).sqrt()


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Sample x_t ~ q(x_t | x₀) given the noise ε (Ho et al. 2020, eq. 4)."""
    a, s = _coefs(alphas_cumprod, t, x0)
    return a * x0 + s * noise


def target(objective: str, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """What the network is trained to predict for `objective`."""
    if objective == "eps":
        return noise
    if objective == "x0":
        return x0
    if objective == "v":
        a, s = _coefs(alphas_cumprod, t, x0)
        return a * noise - s * x0
    raise UserError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")


def to_eps(objective: str, prediction: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """Convert a network prediction to the noise estimate ε̂."""
    if objective == "eps":
        return prediction
    a, s = _coefs(alphas_cumprod, t, x_t)
    if objective == "x0":
        return (x_t - a * prediction) / s
    if objective == "v":
        return s * x_t + a * prediction
    raise UserError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")


def to_x0(objective: str, prediction: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, alphas_cumprod) -> torch.Tensor:
    """Convert a network prediction to the clean-image estimate x̂₀."""
    if objective == "x0":
        return prediction
    a, s = _coefs(alphas_cumprod, t, x_t)
    if objective == "eps":
        return (x_t - s * prediction) / a
    if objective == "v":
        return a * x_t - s * prediction
    raise UserError(f"unknown objective {objective!r}; use one of {', '.join(OBJECTIVES)}")

"""Noise schedules: the cumulative signal level `alphas_cumprod` (written ᾱ_t) for t = 0..T-1.

x_t = sqrt(ᾱ_t) x_0 + sqrt(1 - ᾱ_t) ε  (Ho et al. 2020, eq. 4). Everything else derives from ᾱ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from difflab.errors import UserError

SCHEDULES = ("linear", "cosine")


@dataclass(frozen=True)
class NoiseSchedule:
    """A schedule named by its config; `alphas_cumprod` is computed, never stored in checkpoints."""

    kind: str = "cosine"  # cosine keeps more signal at mid t, which helps 28x28 images
    num_timesteps: int = 1000  # T of Ho et al.
    beta_start: float = 1e-4  # linear only, scaled by 1000/T as in improved DDPM
    beta_end: float = 0.02  # linear only

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise UserError(f"unknown schedule {self.kind!r}; use one of {', '.join(SCHEDULES)}")
        if self.num_timesteps < 2:
            raise UserError(f"num_timesteps must be at least 2, got {self.num_timesteps}")

    @property
    def betas(self) -> torch.Tensor:
        if self.kind == "linear":
            return linear_betas(self.num_timesteps, self.beta_start, self.beta_end)
        return cosine_betas(self.num_timesteps)

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """ᾱ_t, float64 `(T,)`, strictly decreasing in (0, 1)."""
        return torch.cumprod(1.0 - self.betas, dim=0)


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Ho et al. 2020: β linear from beta_start to beta_end, rescaled by 1000/T (improved DDPM) so
    short chains still end near pure noise; clipped at 0.999 so very short chains stay valid."""
    scale = 1000.0 / T
    return torch.linspace(beta_start * scale, beta_end * scale, T, dtype=torch.float64).clamp(max=0.999)


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021, eq. 17: ᾱ(t) = cos²((t/T + s)/(1 + s) · π/2), β clipped at 0.999."""
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = 1.0 - f[1:] / f[:-1]
    return betas.clamp(max=max_beta)

"""The one sampling loop. Every generation and editing trick is one of its two hooks:

- `noise_estimate(x_t, t) -> ε̂`: plain, classifier-free guidance, anagram views, hybrids
  (compositions live in `difflab.diffusion.guidance`);
- the start `x` (pure noise at T, or an image noised to t₀ for SDEdit) and `project(x, t_next)`,
  applied after each step (inpainting puts the known pixels back there).

`callback(step)` sees every step (trajectory pictures and explanation tools hang there).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from difflab.diffusion.solvers import Solver

NoiseEstimate = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B,C,H,W), t (B,)) -> ε̂


@dataclass(frozen=True)
class Step:
    """What the callback sees after each update."""

    index: int  # 0-based position in `timesteps`
    t: int  # the timestep just denoised
    t_next: int  # where x now is (-1: clean)
    x: torch.Tensor  # x_{t_next}, (B, C, H, W)
    x0: torch.Tensor  # x̂₀ predicted at t, (B, C, H, W)
    eps: torch.Tensor  # ε̂ at t, (B, C, H, W)


@torch.no_grad()
def sample(
    noise_estimate: NoiseEstimate,
    x: torch.Tensor,
    timesteps: list[int],
    solver: Solver,
    *,
    generator: torch.Generator | None = None,
    callback: Callable[[Step], None] | None = None,
    project: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run `solver` from `x` at `timesteps[0]` down to the clean image; returns `(B, C, H, W)`."""
    schedule = list(timesteps) + [-1]
    for index, (t, t_next) in enumerate(itertools.pairwise(schedule)):
        t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        eps = noise_estimate(x, t_batch)
        x_next, x0 = solver.step(x, t, t_next, eps, generator=generator)
        # ε̂ may come in float64 (exact x₀/v conversion); the state keeps the input's dtype
        x, x0, eps = x_next.to(x.dtype), x0.to(x.dtype), eps.to(x.dtype)
        if project is not None:
            x = project(x, t_next)
        if callback is not None:
            callback(Step(index, t, t_next, x, x0, eps))
    return x

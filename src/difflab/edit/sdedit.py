"""SDEdit (Meng et al. 2022): image-to-image by noising the input to t₀ and running the usual sampler.

The start hook of the one loop: `x = q_sample(image, t₀, ε)`, then `sample` from t₀ down. A low t₀
keeps the input; t₀ near T forgets it. Levels are given as a number of steps of the strided
schedule (int k: the last k of `timesteps(T, steps)`) or as a fraction of T (float in [0, 1]).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from difflab.diffusion import q_sample, sample, timesteps
from difflab.diffusion.sampling import NoiseEstimate
from difflab.diffusion.solvers import Solver, _randn_like
from difflab.errors import UserError

Level = int | float  # int: strided steps to run (1..steps); float: fraction of T in [0, 1]


def schedule_from(t0: int, num_timesteps: int, steps: int) -> list[int]:
    """`t0` followed by the strided timesteps below it (none closer than half a stride): the path from `t0`."""
    gap = num_timesteps / steps / 2
    return [t0] + [t for t in timesteps(num_timesteps, steps) if t < t0 - gap]


def level_schedule(level: Level, num_timesteps: int, steps: int) -> list[int]:
    """The timesteps an SDEdit at `level` runs through (checked: one-line error when out of range)."""
    if isinstance(level, float):
        if not 0.0 <= level <= 1.0:
            raise UserError(f"noise level {level} is out of range; a fraction must be in [0, 1]")
        return schedule_from(round(level * (num_timesteps - 1)), num_timesteps, steps)
    if not 1 <= level <= steps:
        raise UserError(f"noise level {level} is out of range; use 1..{steps} strided steps (or raise --steps)")
    return timesteps(num_timesteps, steps)[-level:]


def sdedit(
    estimate: NoiseEstimate,
    images: torch.Tensor,
    schedule: list[int],
    solver: Solver,
    alphas_cumprod: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    callback: Callable | None = None,
) -> torch.Tensor:
    """Noise `images` `(B, C, H, W)` to `schedule[0]` and denoise along `schedule`; returns `(B, C, H, W)`."""
    t0 = torch.full((images.shape[0],), schedule[0], dtype=torch.long, device=images.device)
    x = q_sample(images, t0, _randn_like(images, generator), alphas_cumprod)
    return sample(estimate, x, schedule, solver, generator=generator, callback=callback)

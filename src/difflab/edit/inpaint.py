"""Inpainting, RePaint-style (Lugmayr et al. 2022): the projection hook of the one loop.

After every step the known pixels are replaced by the original noised to the new timestep, so the
model only ever invents the masked region and harmonises it with what surrounds it. The final
projection copies the original pixels exactly. `resample` > 1 adds RePaint's harmonisation: jump
back one step with fresh noise and denoise again, `resample - 1` extra times per step.
"""

from __future__ import annotations

import torch

from difflab.diffusion import q_sample, sample
from difflab.diffusion.sampling import NoiseEstimate
from difflab.diffusion.solvers import DDPM, Solver, _randn_like
from difflab.errors import UserError


def check_mask(mask: torch.Tensor, image_shape: tuple[int, ...]) -> torch.Tensor:
    """A boolean `(1, 1, H, W)` mask (True = regenerate) from `(H, W)` or `(1, 1, H, W)`; errors are one line."""
    h, w = image_shape[-2:]
    if tuple(mask.shape[-2:]) != (h, w) or mask.numel() != h * w:
        raise UserError(f"mask shape {tuple(mask.shape)} does not fit {h}x{w} images; fix: give an {h}x{w} mask")
    mask = mask.reshape(1, 1, h, w).bool()
    if not mask.any():
        raise UserError("the mask selects no pixel to regenerate; fix: mark the region to repaint in white (or a non-empty --box)")
    return mask


def inpaint(
    estimate: NoiseEstimate,
    images: torch.Tensor,
    mask: torch.Tensor,
    schedule: list[int],
    solver: Solver,
    alphas_cumprod: torch.Tensor,
    *,
    resample: int = 1,
    generator: torch.Generator | None = None,
    callback=None,
) -> torch.Tensor:
    """Regenerate `mask` (True) of `images` `(B, C, H, W)` from noise at `schedule[0]`; the rest is kept exactly."""
    if resample < 1:
        raise UserError(f"--resample must be at least 1, got {resample}")
    mask = check_mask(mask, images.shape).to(images.device)
    previous = dict(zip(schedule[1:] + [-1], schedule))  # t_next -> t

    def known(t_next: int) -> torch.Tensor:
        if t_next < 0:
            return images
        t = torch.full((images.shape[0],), t_next, dtype=torch.long, device=images.device)
        return q_sample(images, t, _randn_like(images, generator), alphas_cumprod)

    def project(x: torch.Tensor, t_next: int) -> torch.Tensor:
        x = torch.where(mask, x, known(t_next))
        for _ in range(resample - 1 if t_next >= 0 else 0):
            x = _harmonise(estimate, x, previous[t_next], t_next, alphas_cumprod, generator)
            x = torch.where(mask, x, known(t_next))
        return x

    x = _randn_like(images, generator)
    return sample(estimate, x, schedule, solver, generator=generator, callback=callback, project=project)


def _harmonise(estimate, x, t: int, t_next: int, alphas_cumprod, generator) -> torch.Tensor:
    """RePaint's resampling: re-noise x from t_next back to t (q(x_t | x_t_next)), then one DDPM step down."""
    ratio = float(alphas_cumprod[t] / alphas_cumprod[t_next])  # ᾱ_t / ᾱ_{t_next}
    x = ratio**0.5 * x + (1 - ratio) ** 0.5 * _randn_like(x, generator)
    eps = estimate(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device))
    return DDPM(alphas_cumprod).step(x, t, t_next, eps, generator=generator)[0].to(x.dtype)  # ε̂ may be float64

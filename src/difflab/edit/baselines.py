"""The forward process and three ways back from x_t: classical blur, one-step, iterative denoising.

These are the reference points of the denoising figure (the course project on diffusion models,
after Ho et al. 2020): a Gaussian blur only trades noise for blur; one noise estimate gives
x̂₀ = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t, blurry at high t; the iterative sampler recovers detail.
"""

from __future__ import annotations

import torch

from difflab.diffusion import q_sample, sample
from difflab.diffusion.sampling import NoiseEstimate
from difflab.diffusion.solvers import Solver, _randn_like
from difflab.edit.filters import gaussian_blur
from difflab.edit.sdedit import schedule_from
from difflab.errors import UserError


def check_timesteps(ts, num_timesteps: int) -> list[int]:
    ts = [int(t) for t in ts]
    bad = [t for t in ts if not 0 <= t < num_timesteps]
    if not ts or bad:
        raise UserError(f"timestep {bad[0] if bad else 'list'} is out of range; use values in 0..{num_timesteps - 1}")
    return ts


def forward_noise(images: torch.Tensor, ts: list[int], alphas_cumprod: torch.Tensor, *, generator=None) -> torch.Tensor:
    """x_t ~ q(x_t | x₀) for each t in `ts`: `(B, C, H, W)` → `(B, len(ts), C, H, W)`, one ε per t."""
    ts = check_timesteps(ts, len(alphas_cumprod))
    out = []
    for t in ts:
        t_batch = torch.full((images.shape[0],), t, dtype=torch.long, device=images.device)
        out.append(q_sample(images, t_batch, _randn_like(images, generator), alphas_cumprod))
    return torch.stack(out, dim=1)


def one_step_denoise(estimate: NoiseEstimate, x_t: torch.Tensor, t: int, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x̂₀ from a single noise estimate at t (Ho et al. 2020, eq. 15), clipped to [-1, 1]."""
    t_batch = torch.full((x_t.shape[0],), t, dtype=torch.long, device=x_t.device)
    abar = float(alphas_cumprod[t])
    return ((x_t - (1 - abar) ** 0.5 * estimate(x_t, t_batch)) / abar**0.5).clamp(-1, 1)


@torch.no_grad()
def denoise_comparison(
    estimate: NoiseEstimate, images: torch.Tensor, ts: list[int], make_solver, alphas_cumprod: torch.Tensor,
    *, steps: int, blur_sigma: float = 1.0, generator=None,
) -> torch.Tensor:
    """For each t: noisy, blurred, one-step, iterative (`make_solver()` per t) → `(len(ts), 4, B, C, H, W)`."""
    noisy = forward_noise(images, ts, alphas_cumprod, generator=generator)  # (B, K, C, H, W)
    rows = []
    for k, t in enumerate(ts):
        x_t = noisy[:, k]
        solver: Solver = make_solver()
        iterative = sample(estimate, x_t, schedule_from(t, len(alphas_cumprod), steps), solver, generator=generator)
        rows.append(torch.stack([x_t, gaussian_blur(x_t, blur_sigma).clamp(-1, 1),
                                 one_step_denoise(estimate, x_t, t, alphas_cumprod), iterative]))
    return torch.stack(rows)

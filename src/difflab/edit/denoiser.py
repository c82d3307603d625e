"""The single-step denoiser experiment: a time-free U-Net trained at one sigma, tried at others.

`difflab train --objective denoise --sigma 0.5` fits D(x + σε) ≈ x at one σ. Shown noise it never
saw, it under-denoises above σ and smears below it: why diffusion models condition on t.
"""

from __future__ import annotations

import torch

from difflab.diffusion.solvers import _randn_like
from difflab.errors import UserError


def check_sigmas(sigmas) -> list[float]:
    sigmas = [float(s) for s in sigmas]
    bad = [s for s in sigmas if not 0 <= s <= 10]
    if not sigmas or bad:
        raise UserError(f"sigma {bad[0] if bad else 'list'} is out of range; use values in [0, 10], e.g. 0,0.5,1")
    return sigmas


@torch.no_grad()
def denoise_ood(model: torch.nn.Module, images: torch.Tensor, sigmas, *, generator=None) -> torch.Tensor:
    """For each σ: noisy x + σε and D(x + σε) → `(len(sigmas), 2, B, C, H, W)`; one ε shared by all σ."""
    sigmas = check_sigmas(sigmas)
    noise = _randn_like(images, generator)  # (B, C, H, W): the same draw at every σ, only its size changes
    t = torch.zeros(images.shape[0], dtype=torch.long, device=images.device)  # ignored: time_conditioning=False
    rows = []
    for s in sigmas:
        noisy = images + s * noise
        rows.append(torch.stack([noisy, model(noisy, t, None).clamp(-1, 1)]))
    return torch.stack(rows)

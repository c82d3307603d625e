"""Gaussian low-pass filtering: the classical denoising baseline and the split of hybrid images."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from difflab.errors import UserError


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Normalised 1-D Gaussian of radius ceil(3 sigma) (>= 1): 99.7% of the mass; `(2r+1,)` float64."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)  # for sigma -> 0 the side weights underflow to exactly 0
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of `(B, C, H, W)`, edges replicated; `sigma == 0` is the identity."""
    if sigma < 0:
        raise UserError(f"blur sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return x
    b, c, h, w = x.shape
    k = gaussian_kernel(sigma).to(x.dtype).to(x.device)
    r = min(len(k) // 2, h - 1, w - 1)  # replicate padding cannot exceed the image
    k = k[len(k) // 2 - r : len(k) // 2 + r + 1]
    k = k / k.sum()
    y = F.pad(x.reshape(b * c, 1, h, w), (r, r, r, r), mode="replicate")  # (BC, 1, H+2r, W+2r)
    y = F.conv2d(y, k.view(1, 1, 1, -1))  # rows
    y = F.conv2d(y, k.view(1, 1, -1, 1))  # columns
    return y.reshape(b, c, h, w)


def lowpass(sigma: float):
    """`x -> gaussian_blur(x, sigma)` for the hybrid composition."""
    return lambda x: gaussian_blur(x, sigma)



def shrink(x: torch.Tensor, factor: float = 2.0) -> torch.Tensor:
    """`(B, C, H, W)` as seen `factor`× smaller (area-averaged), enlarged back (bilinear) to the input size.

    The judge still reads 100% of plain 1s and 7s at 2×, none at 2.8×: the hybrid benchmark uses 2×.
    """
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(1, round(h / factor)), max(1, round(w / factor))), mode="area")
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)

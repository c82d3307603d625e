"""Noise-estimate compositions for editing: visual anagrams and hybrid images.

Both take plain `NoiseEstimate`s ε̂(x_t, t) — already guided, so classifier-free guidance is applied
to each view's (or each class's) estimate before they are combined — and return one for `sample`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from difflab.diffusion.sampling import NoiseEstimate

ImageMap = Callable[[torch.Tensor], torch.Tensor]  # (B, C, H, W) -> (B, C, H, W)


def anagram(estimate_a: NoiseEstimate, estimate_b: NoiseEstimate, view: ImageMap, inverse: ImageMap) -> NoiseEstimate:
    """Visual anagrams (Geng et al. 2024, eq. 3): ε̂ = ½ (ε_a(x) + view⁻¹(ε_b(view(x)))).

    For an orthogonal view (a pixel permutation) the noise stays i.i.d. Gaussian in both readings,
    so one sample is denoised towards `a` upright and towards `b` through the view.
    """

    def composed(x, t):
        return 0.5 * (estimate_a(x, t) + inverse(estimate_b(view(x), t)))

    return composed


def hybrid(estimate_far: NoiseEstimate, estimate_near: NoiseEstimate, lowpass: ImageMap) -> NoiseEstimate:
    """Factorized diffusion / hybrid images (Geng et al. 2024): ε̂ = lowpass(ε_far) + highpass(ε_near).

    highpass = identity − lowpass, so a lowpass that is the identity gives ε_far exactly
    (ε_near − ε_near is exactly 0 in floating point).
    """

    def composed(x, t):
        near = estimate_near(x, t)
        return lowpass(estimate_far(x, t)) + (near - lowpass(near))

    return composed

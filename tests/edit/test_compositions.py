"""Filters, views, and the anagram / hybrid noise-estimate compositions."""

from __future__ import annotations

import pytest
import torch

from difflab.diffusion import compositions
from difflab.edit import VIEWS, get_view
from difflab.edit.filters import gaussian_blur, gaussian_kernel, lowpass
from difflab.errors import UserError


def test_blur_of_an_impulse_is_the_outer_product_of_the_kernel():
    x = torch.zeros(1, 1, 15, 15)
    x[0, 0, 7, 7] = 1.0
    k = gaussian_kernel(1.5).float()  # radius 5
    expected = torch.zeros(15, 15)
    expected[2:13, 2:13] = torch.outer(k, k)
    assert (gaussian_blur(x, 1.5)[0, 0] - expected).abs().max() < 1e-6


def test_blur_keeps_a_constant_image_and_sigma_zero_is_the_identity():
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(gaussian_blur(x, 0.0), x)
    assert (gaussian_blur(torch.full((1, 1, 8, 8), 0.3), 2.0) - 0.3).abs().max() < 1e-6
    with pytest.raises(UserError, match="sigma"):
        gaussian_blur(x, -1.0)


@pytest.mark.parametrize("name", list(VIEWS))
def test_views_are_invertible_permutations(name):
    x = torch.randn(2, 1, 6, 6)
    v = get_view(name)
    assert torch.equal(v.inverse(v.apply(x)), x)
    assert torch.equal(v.apply(x).flatten().sort().values, x.flatten().sort().values)


def test_unknown_view_is_a_one_line_error():
    with pytest.raises(UserError, match="unknown view 'rot90'; use one of") as err:
        get_view("rot90")
    assert "\n" not in str(err.value)


def test_anagram_applies_the_view_and_its_inverse():
    ramp = torch.linspace(0, 1, 36).view(1, 1, 6, 6)
    e_a = lambda x, t: torch.ones_like(x)
    e_b = lambda x, t: x * ramp
    v = get_view("rot180")
    x, t = torch.randn(2, 1, 6, 6), torch.zeros(2, dtype=torch.long)
    expected = 0.5 * (1 + x * torch.rot90(ramp, 2, dims=(-2, -1)))
    assert (compositions.anagram(e_a, e_b, v.apply, v.inverse)(x, t) - expected).abs().max() < 1e-6


def test_anagram_with_equal_labels_and_identity_view_is_the_plain_estimate(editor):
    x, t = torch.randn(3, 1, 28, 28), torch.full((3,), 600)
    plain = editor.estimate(4, 3)
    v = get_view("identity")
    composed = compositions.anagram(editor.estimate(4, 3), editor.estimate(4, 3), v.apply, v.inverse)
    assert torch.equal(composed(x, t), plain(x, t))


@pytest.mark.parametrize("sigma", [0.0, 1e-3])
def test_hybrid_with_sigma_to_zero_is_exactly_the_far_estimate(editor, sigma):
    x, t = torch.randn(3, 1, 28, 28), torch.full((3,), 600)
    hybrid = compositions.hybrid(editor.estimate(1, 3), editor.estimate(7, 3), lowpass(sigma))
    assert torch.equal(hybrid(x, t), editor.estimate(1, 3)(x, t))


def test_hybrid_with_a_wide_lowpass_takes_the_fine_detail_from_near(editor):
    x, t = torch.randn(3, 1, 28, 28), torch.full((3,), 600)
    far, near = editor.estimate(1, 3)(x, t), editor.estimate(7, 3)(x, t)
    mixed = compositions.hybrid(editor.estimate(1, 3), editor.estimate(7, 3), lowpass(2.0))(x, t)
    assert (mixed - (gaussian_blur(far, 2.0) + near - gaussian_blur(near, 2.0))).abs().max() < 1e-5
    assert (mixed - far).abs().max() > 1e-3


def test_anagram_and_hybrid_samples_are_deterministic_under_a_seed(editor):
    a1, a2 = editor.anagram((6, 9), "rot180", n=2, seed=3), editor.anagram((6, 9), "rot180", n=2, seed=3)
    assert torch.equal(a1, a2)
    assert not torch.equal(a1, editor.anagram((6, 9), "rot180", n=2, seed=4))
    assert torch.equal(editor.hybrid(1, 7, 2.0, n=2, seed=3), editor.hybrid(1, 7, 2.0, n=2, seed=3))
    with pytest.raises(UserError, match="two class ids"):
        editor.anagram((6,), "rot180")

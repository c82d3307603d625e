"""SDEdit levels, start hook; inpainting projection hook and its checks."""

from __future__ import annotations

import pytest
import torch

from difflab.diffusion import timesteps
from difflab.edit import box_mask, level_schedule
from difflab.errors import UserError


def test_levels_map_to_the_tail_of_the_strided_schedule_or_a_fraction_of_T():
    assert level_schedule(3, 1000, 20) == timesteps(1000, 20)[-3:] == [149, 99, 49]
    assert level_schedule(20, 1000, 20)[0] == 999
    assert level_schedule(0.5, 1000, 20) == [500, 449, 399, 349, 299, 249, 199, 149, 99, 49]
    assert level_schedule(0.0, 1000, 20) == [0]


@pytest.mark.parametrize("level, match", [(0, "1..20"), (21, "1..20"), (1.5, r"\[0, 1\]"), (-0.1, r"\[0, 1\]")])
def test_a_level_out_of_range_is_a_one_line_error(level, match):
    with pytest.raises(UserError, match=match):
        level_schedule(level, 1000, 20)


def test_sdedit_keeps_the_input_at_the_lowest_level_and_forgets_it_at_the_highest(editor, digits):
    x, _ = digits
    out = editor.sdedit(x, [1, editor.sampler.steps], label=7, seed=0)  # (3, 2, 1, 28, 28)
    low_mse = (out[:, 0] - x).pow(2).mean()
    assert low_mse < 0.05, low_mse  # ᾱ_49 = 0.992: one step of even a 60-step model barely moves it
    assert (out[:, 1] - x).pow(2).mean() > 10 * low_mse
    other = editor.sdedit(-x, [editor.sampler.steps], label=7, seed=0)[:, 0]  # a different input, same noise
    assert (other - out[:, 1]).abs().max() < 1e-2  # ᾱ_999 ≈ 2e-9: the start holds ~no trace of the input


def test_sdedit_is_deterministic_under_a_seed(editor, digits):
    x, _ = digits
    a, b = editor.sdedit(x, [3], seed=5), editor.sdedit(x, [3], seed=5)
    assert torch.equal(a, b)
    assert not torch.equal(a, editor.sdedit(x, [3], seed=6))


@pytest.mark.parametrize("resample", [1, 2])
def test_inpaint_leaves_every_known_pixel_exactly_equal(editor, digits, resample):
    x, _ = digits
    mask = box_mask((6, 8, 20, 18), 28)
    out = editor.inpaint(x, mask, label=3, resample=resample, seed=1)  # CFG composes with the projection
    assert (out - x)[:, :, ~mask].abs().max() == 0
    assert (out - x)[:, :, mask].abs().max() > 0.1
    assert torch.equal(out, editor.inpaint(x, mask, label=3, resample=resample, seed=1))


def test_inpaint_rejects_a_wrong_mask_shape_and_an_empty_mask(editor, digits):
    x, _ = digits
    with pytest.raises(UserError, match=r"mask shape \(27, 28\) does not fit 28x28"):
        editor.inpaint(x, torch.ones(27, 28, dtype=torch.bool))
    with pytest.raises(UserError, match="selects no pixel"):
        editor.inpaint(x, torch.zeros(28, 28, dtype=torch.bool))
    with pytest.raises(UserError, match="resample"):
        editor.inpaint(x, box_mask((0, 0, 5, 5), 28), resample=0)


@pytest.mark.parametrize("box", [(5, 5, 5, 9), (0, 0, 29, 10), (1, 2, 3)])
def test_bad_boxes_are_one_line_errors(box):
    with pytest.raises(UserError, match="--box"):
        box_mask(box, 28)


def test_editor_checks_images_and_labels(editor):
    with pytest.raises(UserError, match=r"do not fit this model"):
        editor.sdedit(torch.zeros(1, 3, 28, 28), [1])
    with pytest.raises(UserError, match="label 10 is out of range"):
        editor.estimate(10, 1)

"""Attributions: saliency sees only what the model reads, IG is complete, Grad-CAM maps are image-sized."""

import pytest
import torch
from torch import nn

from difflab.errors import UserError
from difflab.explain.attribution import (
    attribute,
    attribute_over_time,
    completeness,
    last_decoder_conv,
    scalar_output,
    starting_noise,
)
from difflab.explain.trajectories import collect
from difflab.run import Run


class LeftHalf(nn.Module):
    """A hand-built 'denoiser' read-out that only looks at the left half of the image."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x, t, cond):
        h = torch.tanh(self.conv(x[..., :14]))  # (B, 4, 28, 14)
        return h.flatten(1).sum(1) * (1 + t.float() / 1000)


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run if isinstance(tiny_run, Run) else Run.load(tiny_run)


def test_saliency_is_zero_where_the_model_does_not_look():
    torch.manual_seed(0)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 500])
    maps, delta = attribute(LeftHalf(), "saliency", x, t, None)
    assert maps.shape == (2, 1, 28, 28) and delta is None
    assert maps[..., 14:].abs().max() == 0
    assert (maps[..., :14] > 0).float().mean() > 0.9


def test_grad_cam_of_a_toy_layer_has_the_input_size():
    maps, _ = attribute(LeftHalf(), "grad-cam", torch.randn(1, 1, 28, 28), torch.tensor([5]), None, layer="conv")
    assert maps.shape == (1, 1, 28, 28) and (maps >= 0).all()


@pytest.mark.parametrize("target", ["eps-proj", "x0-ink"])
def test_integrated_gradients_are_complete_on_the_trained_unet(run, target):
    g = torch.Generator().manual_seed(1)
    x, t, cond = torch.randn(1, 1, 28, 28, generator=g), torch.tensor([600]), torch.tensor([3])
    final = torch.randn(1, 1, 28, 28, generator=g)
    f = scalar_output(run, target, x, t, cond, final)
    maps, delta = attribute(f, "integrated-gradients", x, t, cond)
    report = completeness(f, x, t, cond, maps)
    gap = report["f_x_minus_f_baseline"][0]
    assert abs(gap) > 1e-3  # the scalar actually moves between baseline and input
    assert report["max_abs_error"] <= 1e-2 * abs(gap) + 1e-4
    assert float(delta.abs().max()) <= 1e-2 * abs(gap) + 1e-4


def test_grad_cam_on_the_last_decoder_convolution(run):
    name = last_decoder_conv(run.model)
    assert name == "up.1.0.conv2" and name in dict(run.model.named_modules())
    x, t, cond = torch.randn(2, 1, 28, 28), torch.tensor([300, 300]), torch.tensor([1, 2])
    f = scalar_output(run, "eps-proj", x, t, cond, x)
    maps, _ = attribute(f, "grad-cam", x, t, cond)
    assert maps.shape == (2, 1, 28, 28) and maps.abs().sum() > 0


def test_constant_noise_feeds_the_same_start_at_every_timestep(run):
    traj = collect(run, torch.tensor([4]), timesteps=[999, 500], seed=3, settings=dict(steps=4))
    rows = attribute_over_time(run, traj, ["saliency"], noise="constant", seed=3)
    start = starting_noise(run, 3)
    assert torch.equal(traj.xt[999][:1], start)  # the sampler started from exactly this noise
    assert [r["t"] for r in rows] == [999, 499] and all(torch.equal(r["input"], start) for r in rows)
    live = attribute_over_time(run, traj, ["saliency"], noise="live")
    assert not torch.equal(live[1]["input"], start)


def test_unknown_target_and_method_name_the_fix(run):
    x, t = torch.randn(1, 1, 28, 28), torch.tensor([1])
    with pytest.raises(UserError, match="x0-ink"):
        scalar_output(run, "pixels", x, t, None, x)
    with pytest.raises(UserError, match="saliency"):
        attribute(LeftHalf(), "lime", x, t, None)
    with pytest.raises(UserError, match="no layer named 'nope'"):
        attribute(scalar_output(run, "eps-proj", x, t, None, x), "grad-cam", x, t, None, layer="nope")


def test_ink_is_what_differs_from_the_background_on_black_or_white():
    from difflab.explain.attribution import ink_mask

    digit = torch.full((1, 1, 8, 8), -1.0)
    digit[..., 2:6, 3:5] = torch.tensor([0.5, -0.2]).repeat(4, 1)  # a stroke, one column of it darker than mid-grey
    assert torch.equal(ink_mask(digit), (digit > 0).float())  # on black digits: the old `final > 0`
    emoji = torch.ones(1, 3, 8, 8)  # white background
    emoji[:, :, 2:6, 2:6] = torch.tensor([1.0, 0.6, -1.0]).view(3, 1, 1)  # a yellow glyph: blue channel far from white
    mask = ink_mask(emoji)
    assert mask.shape == emoji.shape and mask[0, :, 2:6, 2:6].eq(1).all() and mask.sum() == 3 * 16

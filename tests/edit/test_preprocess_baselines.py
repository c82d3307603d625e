"""Hand-drawn input preprocessing and the denoising baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from difflab.diffusion import NoiseSchedule, q_sample
from difflab.edit import load_drawing, load_mask
from difflab.edit.baselines import forward_noise, one_step_denoise
from difflab.errors import UserError


def _photo(path, *, dark_background=False):
    """A 'phone photo' of a 7: grey uneven paper, dark ink, off-centre, 300x200."""
    gray = np.tile(np.linspace(190, 225, 300), (200, 1))  # (H, W) lighting gradient
    image = Image.fromarray(gray.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.line([(40, 30), (140, 30), (80, 170)], fill=30, width=12)
    if dark_background:
        image = Image.fromarray(255 - np.asarray(image))
    image.save(path)
    return path


def test_a_photo_of_ink_on_paper_becomes_mnist_like(tmp_path):
    x = load_drawing(_photo(tmp_path / "seven.jpg"))  # (1, 1, 28, 28)
    assert x.shape == (1, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    ink = (x[0, 0] + 1) / 2
    rows, cols = torch.nonzero(ink > 0.5, as_tuple=True)
    assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 in (19, 20, 21)  # the 20x20 box
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    com = ((ys * ink).sum() / ink.sum(), (xs * ink).sum() / ink.sum())
    assert abs(com[0] - 13.5) <= 1 and abs(com[1] - 13.5) <= 1
    assert torch.all(x[0, 0, 0] == -1) and torch.all(x[0, 0, :, 0] == -1)  # clean black background


def test_light_and_dark_backgrounds_give_the_same_input(tmp_path):
    light = load_drawing(_photo(tmp_path / "light.png"))
    dark = load_drawing(_photo(tmp_path / "dark.png", dark_background=True))
    assert (light - dark).abs().max() < 1e-6


def test_blank_and_unreadable_images_are_one_line_errors(tmp_path):
    Image.new("L", (50, 50), 240).save(tmp_path / "blank.png")
    with pytest.raises(UserError, match="no ink"):
        load_drawing(tmp_path / "blank.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match="not a readable image"):
        load_drawing(tmp_path / "notes.png")
    with pytest.raises(UserError, match="not found"):
        load_drawing(tmp_path / "missing.png")


def test_mask_png_must_have_the_model_size(tmp_path):
    Image.new("L", (32, 32), 255).save(tmp_path / "m32.png")
    with pytest.raises(UserError, match="is 32x32, the model's images are 28x28"):
        load_mask(tmp_path / "m32.png", 28)
    Image.new("L", (28, 28), 0).save(tmp_path / "m28.png")
    assert not load_mask(tmp_path / "m28.png", 28).any()


def test_forward_noise_is_q_sample_with_the_generators_noise():
    abar = NoiseSchedule("cosine", 1000).alphas_cumprod
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    out = forward_noise(x, [100, 700], abar, generator=torch.Generator().manual_seed(0))  # (2, 2, 1, 8, 8)
    g = torch.Generator().manual_seed(0)
    for k, t in enumerate([100, 700]):
        expected = q_sample(x, torch.full((2,), t), torch.randn(x.shape, generator=g), abar)
        assert (out[:, k] - expected).abs().max() < 1e-6
    with pytest.raises(UserError, match="timestep 1000 is out of range"):
        forward_noise(x, [1000], abar)


def test_one_step_denoising_with_the_true_noise_recovers_the_image():
    abar = NoiseSchedule("cosine", 1000).alphas_cumprod
    x, noise = torch.rand(2, 1, 8, 8) * 1.8 - 0.9, torch.randn(2, 1, 8, 8)
    x_t = q_sample(x, torch.full((2,), 500), noise, abar)
    assert (one_step_denoise(lambda *_: noise, x_t, 500, abar) - x).abs().max() < 1e-5


def test_denoise_comparison_columns(editor, digits):
    x, _ = digits
    table = editor.denoise(x[:1], [300, 800], seed=0)  # (2, 4, 1, 1, 28, 28)
    assert table.shape == (2, 4, 1, 1, 28, 28)
    assert torch.equal(table[:, 0, :, 0], editor.noise(x[:1], [300, 800], seed=0)[0, :, 0][:, None])
    err = (table - x[:1]).pow(2).flatten(2).mean(-1)  # (t, method): MSE to the clean image
    assert torch.all(err[:, 2] < err[:, 0])  # one-step x̂₀ beats the noisy input at every t


def test_a_colour_model_gets_the_photo_itself_not_an_mnist_like_copy(tmp_path):
    rgba = np.zeros((30, 50, 4), np.uint8)  # transparent, with an opaque red square in the middle
    rgba[5:25, 15:35] = (220, 30, 30, 255)
    Image.fromarray(rgba).save(tmp_path / "sticker.png")
    x = load_drawing(tmp_path / "sticker.png", size=16, channels=3)
    assert x.shape == (1, 3, 16, 16)
    assert torch.allclose(x[0, :, 8, 8], torch.tensor([220, 30, 30]) / 127.5 - 1, atol=0.02)  # red, centred
    assert x[0, :, 0, 0].eq(1).all()  # the transparent corner: white paper, not black
    assert load_drawing(tmp_path / "sticker.png", size=16).shape == (1, 1, 16, 16)  # a gray model: MNIST-like

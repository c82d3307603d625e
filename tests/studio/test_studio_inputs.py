"""Fields, canvases, uploads and masks → checked values (`difflab.studio.inputs`): tiny arrays, no Gradio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from difflab.errors import UserError
from difflab.studio import inputs


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1, 1e30, "abc", None, 2.5])
def test_number_refuses_nan_huge_and_text_in_one_line(value):
    with pytest.raises(UserError, match="steps must be a whole number in") as err:
        inputs.number(value, "steps", 1, 1000, integer=True)
    assert "\n" not in str(err.value) and "fix:" in str(err.value)


def test_number_accepts_floats_from_number_fields():
    assert inputs.number(16.0, "n", 1, 64, integer=True) == 16
    assert isinstance(inputs.number(16.0, "n", 1, 64, integer=True), int)
    assert inputs.number("2.5", "guidance", 0, 100) == 2.5


def test_parse_class_reads_the_id_and_refuses_others():
    choices = inputs.class_choices(("zero", "one", "two"))
    assert choices[2] == "2: two"
    assert inputs.parse_class(choices[2], 3) == 2
    assert inputs.parse_class(inputs.EVERY_CLASS, 3, allow=(inputs.EVERY_CLASS,)) == inputs.EVERY_CLASS
    with pytest.raises(UserError, match="not one of this run's 3 classes"):
        inputs.parse_class("7: seven", 3)
    with pytest.raises(UserError, match="not one of"):
        inputs.parse_class(inputs.EVERY_CLASS, 3)  # not allowed here


def stroke_canvas(size: int = 64) -> dict:
    """A Gradio sketchpad value: transparent paper, one black vertical stroke."""
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[8:56, 28:36] = (0, 0, 0, 255)
    return {"background": None, "layers": [rgba], "composite": rgba}


def test_canvas_stroke_becomes_a_centred_mnist_like_one():
    picture = inputs.canvas_image(stroke_canvas())
    assert picture.shape == (64, 64, 3) and picture.max() == 1.0 and picture.min() == 0.0  # paper white, ink black
    x = inputs.drawing_tensor(picture, (1, 28, 28))
    assert x.shape == (1, 1, 28, 28) and x.min() == -1 and x.max() > 0.9
    ink = (x[0, 0] > 0).nonzero().float()
    assert abs(ink[:, 0].mean() - 13.5) < 2 and abs(ink[:, 1].mean() - 13.5) < 2  # centred by mass


def test_colour_models_get_the_picture_itself_cropped_not_mnist_like(tmp_path):
    photo = np.zeros((40, 60, 3), np.uint8)
    photo[:, 10:50] = (250, 200, 0)  # a yellow square in the centre of a wide black photo
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    x = inputs.drawing_tensor(inputs.read_upload(path), (3, 32, 32))
    assert x.shape == (1, 3, 32, 32)  # colour kept, not one gray channel copied
    assert torch.allclose(x[0, :, 16, 16], torch.tensor([250, 200, 0]) / 127.5 - 1, atol=0.02)  # the centre crop
    drawn = inputs.drawing_tensor(inputs.canvas_image(stroke_canvas()), (3, 32, 32))
    assert drawn[0, :, 0, 0].eq(1).all() and drawn[0, :, 16, 16].lt(-0.9).all()  # black stroke on white paper, in place


@pytest.mark.parametrize("canvas", [None, {"composite": None}, {"composite": np.zeros((50, 50, 4), np.uint8)},
                                    {"composite": np.full((50, 50, 3), 255, np.uint8)}])
def test_empty_canvas_says_so(canvas):
    with pytest.raises(UserError, match="the canvas is empty"):
        inputs.drawing_tensor(inputs.canvas_image(canvas), (1, 28, 28))


def test_huge_canvas_is_refused():
    with pytest.raises(UserError, match="larger than 4096"):
        inputs.canvas_image({"composite": np.zeros((5000, 10), np.uint8)})


def test_upload_not_an_image_and_huge_image(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(UserError, match=r"^notes.png is not a readable image \(UnidentifiedImageError\); fix: upload a PNG or JPG$"):
        inputs.read_upload(text)
    huge = tmp_path / "huge.png"
    Image.new("L", (5000, 8)).save(huge)
    with pytest.raises(UserError, match="upload huge.png is 5000x8 pixels, larger than 4096"):  # from the header
        inputs.read_upload(huge)
    ok = tmp_path / "ok.png"
    Image.fromarray(np.full((10, 12), 255, np.uint8)).save(ok)
    assert inputs.read_upload(ok).shape == (10, 12, 3)


def mask_value(painted: np.ndarray) -> dict:
    """An image editor value whose one layer is painted (alpha 255) where `painted` is True."""
    layer = np.zeros((*painted.shape, 4), np.uint8)
    layer[painted] = (255, 0, 0, 255)
    return {"background": None, "layers": [layer], "composite": None}


def test_painted_mask_is_resized_to_model_pixels():
    painted = np.zeros((224, 224), bool)
    painted[:112, :] = True  # the top half
    mask = inputs.painted_mask(mask_value(painted), 28)
    assert mask.shape == (28, 28) and mask.dtype == torch.bool
    assert mask[:14].all() and not mask[14:].any()


@pytest.mark.parametrize(("fill", "message"), [(False, "covers no pixel"), (True, "covers the whole image")])
def test_mask_covering_nothing_or_everything_is_refused(fill, message):
    with pytest.raises(UserError, match=message):
        inputs.painted_mask(mask_value(np.full((56, 56), fill)), 28)
    with pytest.raises(UserError, match="no mask painted"):
        inputs.painted_mask({"layers": []}, 28)

"""What the page sends, checked where it enters: numbers typed in fields, a sketch canvas, an upload, a mask.

Every mistake is a `UserError` of one line naming the value and the fix; the page shows it and the
server keeps serving.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from difflab.edit.preprocess import model_input, on_white, read_picture
from difflab.errors import UserError

MAX_SIDE = 4096  # pixels on a side of an upload or canvas: a phone photo fits, a decompression bomb does not
MAX_SAMPLES = 64  # images per Generate: a grid a page shows at once (the CLI has no such limit)
MASK_FRACTION = 0.3  # a model pixel is masked when this much of its area was painted
EVERY_CLASS = "every class"  # the class choice that cycles through the classes
UNCONDITIONAL = "unconditional"  # the target choice of an edit steered by no class


def number(value, name: str, lo: float, hi: float, *, integer: bool = False) -> int | float:
    """A field's value as a finite number in [lo, hi] (an int when `integer`); one line when it is not."""
    kind = "a whole number" if integer else "a number"
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be {kind} in [{lo:g}, {hi:g}], got {value!r}; fix: type {kind}") from None
    if not math.isfinite(x) or not lo <= x <= hi or (integer and x != int(x)):
        raise UserError(f"{name} must be {kind} in [{lo:g}, {hi:g}], got {value!r}; fix: type {kind} in that range")
    return int(x) if integer else x


def class_choices(class_names: tuple[str, ...]) -> list[str]:
    """The class dropdown's entries: "k: name" for each class (the id first, as `--label` takes it)."""
    return [f"{i}: {name}" for i, name in enumerate(class_names)]


def parse_class(choice, num_classes: int, *, allow: tuple[str, ...] = ()) -> int | str | None:
    """A dropdown entry → class id; an entry of `allow` (EVERY_CLASS, UNCONDITIONAL) is returned as is."""
    if choice in allow:
        return choice
    if not num_classes:
        return None
    head = str(choice).split(":", 1)[0].strip()
    if not head.isdigit() or not 0 <= int(head) < num_classes:
        raise UserError(f"class {choice!r} is not one of this run's {num_classes} classes; fix: pick one from the list")
    return int(head)


def check_side(width: int, height: int, what: str) -> None:
    if max(width, height) > MAX_SIDE:
        raise UserError(f"{what} is {width}x{height} pixels, larger than {MAX_SIDE} on a side; fix: scale it down")


def read_upload(path: str | Path) -> np.ndarray:
    """An uploaded file as `(H, W, 3)` RGB in [0, 1], transparency on white: refused before decoding when not
    an image or too large."""
    name = Path(path).name
    return read_picture(path, lambda width, height: check_side(width, height, f"upload {name}"), verb="upload",
                        shown=name)


def canvas_image(value) -> np.ndarray | None:
    """A sketch canvas (Gradio's `{"composite": (H, W[, C])}` or an array) as `(H, W, 3)` RGB in [0, 1],
    transparent pixels on white; None when there is no canvas at all."""
    image = value.get("composite") if isinstance(value, dict) else value
    if image is None:
        return None
    a = np.asarray(image, dtype=np.float64) / 255.0
    check_side(a.shape[1], a.shape[0], "the canvas")
    if a.ndim == 2:
        return np.repeat(a[..., None], 3, axis=-1)
    if a.shape[-1] in (1, 2):  # gray, gray + alpha
        a = np.concatenate([np.repeat(a[..., :1], 3, axis=-1), a[..., 1:]], axis=-1)
    return on_white(a) if a.shape[-1] == 4 else a[..., :3]


def drawing_tensor(rgb: np.ndarray | None, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """A drawing or photo `(H, W, 3)` → the model's input `(1, C, H, W)` in [-1, 1] (`edit.preprocess.model_input`:
    MNIST-like for gray models, the centre-cropped picture for colour ones); one line when it is blank."""
    if rgb is None or rgb.size == 0 or np.ptp(rgb) < 0.1:
        raise UserError("the canvas is empty; fix: draw on it (or upload an image) first")
    return model_input(rgb, image_shape)


def painted_mask(value, size: int) -> torch.Tensor:
    """The painted layers of a mask editor → bool `(size, size)`, True = regenerate; refused when the
    paint covers nothing or everything."""
    layers = value.get("layers") if isinstance(value, dict) else None
    if not layers:
        raise UserError("no mask painted; fix: paint over the part of the input to regenerate")
    alpha = np.max([_paint(layer) for layer in layers], axis=0)  # (H, W) in [0, 1]
    cells = np.asarray(Image.fromarray((alpha * 255).astype(np.uint8)).resize((size, size), Image.BOX)) / 255.0
    mask = torch.from_numpy(cells >= MASK_FRACTION)
    if not mask.any():
        raise UserError("the mask covers no pixel; fix: paint over the part of the input to regenerate")
    if mask.all():
        raise UserError("the mask covers the whole image; fix: leave some pixels unpainted (or use Generate)")
    return mask


def _paint(layer) -> np.ndarray:
    """How much of each pixel a layer covers: its alpha, or (no alpha channel) whether it is not black."""
    a = np.asarray(layer, dtype=np.float64)
    if a.ndim == 3 and a.shape[-1] in (2, 4):
        return a[..., -1] / 255.0
    return (a.reshape(*a.shape[:2], -1).max(-1) > 0).astype(np.float64)


__all__ = ["EVERY_CLASS", "MAX_SAMPLES", "MAX_SIDE", "UNCONDITIONAL", "canvas_image", "class_choices", "drawing_tensor",
           "number", "painted_mask", "parse_class", "read_upload"]

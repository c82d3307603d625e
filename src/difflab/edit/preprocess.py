"""Hand-drawn input or a photo → the model's input, and masks from PNGs or boxes.

Gray models (the digits, garments, letters: all white on black) get it MNIST-like; colour models get the
picture itself, transparency on white, centre-cropped to a square and resized, as a folder's photos are
(`model_input`). MNIST's own recipe (LeCun et al. 1998): white ink on black, the digit scaled into a 20×20 box keeping
its aspect ratio, then placed in 28×28 so that its centre of mass is the centre. A phone photo of
ink on paper has a light, uneven background, so it is inverted and its background level subtracted.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from difflab.errors import UserError

INK_THRESHOLD = 0.35  # after background removal: below this is paper texture or shadow, not ink


def read_gray(path: str | Path) -> np.ndarray:
    """Any Pillow-readable image as `(H, W)` float in [0, 1]; a one-line error when it is not an image."""
    with _readable(path), Image.open(path) as image:
        return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def read_picture(path: str | Path, check_size: Callable[[int, int], None] | None = None, verb: str = "give",
                 shown: str | None = None) -> np.ndarray:
    """Any Pillow-readable image as `(H, W, 3)` RGB float in [0, 1], transparency laid over white.

    `check_size(width, height)` runs on the header, before decoding (the studio refuses huge uploads there);
    `verb` is how the fix asks for another file ("give" on the command line, "upload" in the studio); `shown`
    names the file in errors instead of its path (an upload's temporary path means nothing to its owner)."""
    with _readable(path, verb, shown), Image.open(path) as image:
        if check_size is not None:
            check_size(*image.size)
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255.0
    return on_white(rgba)


@contextmanager
def _readable(path: str | Path, verb: str = "give", shown: str | None = None):
    """Whatever opening and decoding `path` raises, as one line naming the file (`shown`, else its path) and the fix."""
    name = shown or path
    try:
        yield
    except UserError:
        raise  # a check's own line (it is a ValueError too)
    except FileNotFoundError:
        raise UserError(f"image {name} not found; fix: {verb} a PNG/JPG path") from None
    except PermissionError:
        raise UserError(f"image {name} is not readable (permission denied); fix: `chmod a+r` it") from None
    except Image.DecompressionBombError as err:
        raise UserError(f"{name} has too many pixels ({err}); fix: scale it down") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        detail = type(err).__name__ if shown else err  # Pillow's own text repeats the path
        raise UserError(f"{name} is not a readable image ({detail}); fix: {verb} a PNG or JPG") from None


def on_white(rgba: np.ndarray) -> np.ndarray:
    """`(H, W, 4)` in [0, 1] → `(H, W, 3)`: paint over white paper."""
    alpha = rgba[..., 3:]
    return rgba[..., :3] * alpha + (1 - alpha)


def model_input(rgb: np.ndarray, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """A drawing or photo `(H, W, 3)` in [0, 1] → the model's input `(1, C, H, W)` in [-1, 1]: MNIST-like for a
    gray model, the centre-cropped picture for a colour one."""
    c, _, size = image_shape
    if c == 1:
        return mnist_like(to_ink(rgb.mean(-1)), size=size, box=round(size * 20 / 28))
    picture = Image.fromarray(np.rint(np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    square = np.asarray(ImageOps.fit(picture, (size, size), Image.Resampling.LANCZOS), dtype=np.float32)
    return torch.from_numpy(square / 127.5 - 1).permute(2, 0, 1)[None].contiguous()  # (1, 3, size, size)


def to_ink(gray: np.ndarray) -> np.ndarray:
    """Ink as 1, background as 0: inverted when the border is light, background level removed."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    ink = 1.0 - gray if np.median(border) > 0.5 else gray.copy()
    background = np.median(np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]]))
    span = ink.max() - background
    if span < 0.1:
        raise UserError("no ink found in the image (it is nearly uniform); fix: a darker drawing on plain paper")
    ink = np.clip((ink - background) / span, 0, 1)
    ink[ink < INK_THRESHOLD] = 0.0
    return ink


def mnist_like(ink: np.ndarray, *, size: int = 28, box: int = 20) -> torch.Tensor:
    """Crop to the ink, scale into `box`×`box`, centre by centre of mass in `size`×`size`; `(1, 1, size, size)` in [-1, 1]."""
    rows, cols = np.nonzero(ink > 0.5)
    crop = _resize(ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1], 4 * box)  # work at 4x the box
    crop = thicken(crop, box / max(crop.shape))
    scale = box / max(crop.shape)
    h, w = max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale))
    small = _resize(crop, max(h, w))
    canvas = np.zeros((size, size))
    top, left = (size - h) // 2, (size - w) // 2
    canvas[top : top + h, left : left + w] = small
    ys, xs = np.indices(canvas.shape)
    mass = canvas.sum()
    dy, dx = round(size / 2 - 0.5 - (ys * canvas).sum() / mass), round(size / 2 - 0.5 - (xs * canvas).sum() / mass)
    padded = np.pad(canvas, size)  # shift without wrapping ink round the edge
    canvas = padded[size - dy : 2 * size - dy, size - dx : 2 * size - dx]
    return torch.from_numpy(canvas).float().clamp(0, 1).mul(2).sub(1).view(1, 1, size, size)


def _resize(a: np.ndarray, longest: int) -> np.ndarray:
    """Resize `(H, W)` in [0, 1] so its longer side is `longest` (Lanczos), keeping the aspect ratio."""
    scale = longest / max(a.shape)
    h, w = max(1, round(a.shape[0] * scale)), max(1, round(a.shape[1] * scale))
    image = Image.fromarray((a * 255).round().astype(np.uint8)).resize((w, h), Image.LANCZOS)
    return np.asarray(image, dtype=np.float64) / 255


def thicken(ink: np.ndarray, scale: float, *, target: float = 2.6) -> np.ndarray:
    """Widen strokes to ~`target` px after scaling by `scale`: MNIST pens are 2-3 px wide at 28 px,
    a ballpoint line on a phone photo would shrink to a faint hairline. Width ≈ 2·area / boundary."""
    solid = ink > 0.5
    inner = solid.copy()
    inner[1:-1, 1:-1] &= solid[:-2, 1:-1] & solid[2:, 1:-1] & solid[1:-1, :-2] & solid[1:-1, 2:]
    width = 2 * solid.sum() / max(1, (solid & ~inner).sum())  # in input pixels
    k = int(round(target / scale - width)) | 1  # noqa: RUF046 - odd filter size adding the missing width
    if k < 3:
        return ink
    x = torch.from_numpy(ink)[None, None]  # (1, 1, H, W)
    x = torch.nn.functional.max_pool2d(x, (1, k), stride=1, padding=(0, k // 2))
    x = torch.nn.functional.max_pool2d(x, (k, 1), stride=1, padding=(k // 2, 0))
    return x[0, 0].numpy()


def load_drawing(path: str | Path, *, size: int = 28, channels: int = 1) -> torch.Tensor:
    """A PNG/JPG drawing or photo as the input `(1, channels, size, size)` in [-1, 1] of a model of that many
    channels (`model_input`)."""
    return model_input(read_picture(path), (channels, size, size))


def load_mask(path: str | Path, size: int) -> torch.Tensor:
    """A mask image, white (> 50%) = regenerate; must be `size`×`size`. Returns bool `(size, size)`."""
    gray = read_gray(path)
    if gray.shape != (size, size):
        raise UserError(f"mask {path} is {gray.shape[1]}x{gray.shape[0]}, the model's images are {size}x{size}; "
                        f"fix: draw the mask at {size}x{size}")
    return torch.from_numpy(gray > 0.5)


def box_mask(box: tuple[int, ...], size: int) -> torch.Tensor:
    """Bool `(size, size)` mask, True inside x0 <= x < x1, y0 <= y < y1."""
    if len(box) != 4:
        raise UserError(f"--box needs four numbers x0,y0,x1,y1, got {','.join(map(str, box))}")
    x0, y0, x1, y1 = box
    if not (0 <= x0 < x1 <= size and 0 <= y0 < y1 <= size):
        raise UserError(f"--box {x0},{y0},{x1},{y1} is empty or outside the {size}x{size} image; "
                        f"fix: 0 <= x0 < x1 <= {size} and 0 <= y0 < y1 <= {size}")
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[y0:y1, x0:x1] = True
    return mask

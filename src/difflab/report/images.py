"""Image grids and strips as PNG (Pillow only; no torchvision)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from difflab.run import files


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """`(N, C, H, W)` in [-1, 1] → `(N, H, W, C)` uint8."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid(images: torch.Tensor, nrow: int, *, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile `(N, C, H, W)` images into `nrow`-wide rows; returns `(H', W', C)` uint8."""
    pixels = to_uint8(images)  # (N, H, W, C)
    n, h, w, c = pixels.shape
    ncol = nrow
    nrows = max(1, -(-n // ncol))
    canvas = np.full((nrows * (h + pad) + pad, ncol * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, ncol)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = pixels[i]
    return canvas


def save_png(array: np.ndarray, path: str | Path, *, scale: int = 1) -> Path:
    """Save `(H, W, C)` uint8 as PNG, optionally enlarged with nearest-neighbour for small digits."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    return files.atomic_save(path, lambda out: image.save(out, format=pil_format(path)))


def pil_format(path: str | Path) -> str:
    """PIL's format name for a file name ("x.jpg" -> "JPEG"); PNG when the suffix names none."""
    return Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")


def save_grid(images: torch.Tensor, path: str | Path, *, nrow: int = 10, scale: int = 2) -> Path:
    return save_png(grid(images, nrow), path, scale=scale)

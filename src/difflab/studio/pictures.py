"""Tensors → what the page shows and offers to download: enlarged pixel grids, strips, PNG and .npz files.

Pixels stay pixels (nearest-neighbour enlargement), so a 28×28 digit reads at a glance and a grid of 16
is cheap enough to send after every sampling step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from difflab.report.images import grid, save_png, to_uint8
from difflab.run import files

SCALE = 4  # screen pixels per model pixel: 28 px digits shown at 112 px


def enlarge(array: np.ndarray, scale: int = SCALE) -> np.ndarray:
    """`(H, W, C)` uint8 → `(H·s, W·s)` (gray) or `(H·s, W·s, 3)`: what `gr.Image` shows crisp."""
    big = array.repeat(scale, 0).repeat(scale, 1)
    return big[..., 0] if big.shape[-1] == 1 else big


def grid_picture(images: torch.Tensor, nrow: int | None = None, *, scale: int = SCALE) -> np.ndarray:
    """`(N, C, H, W)` in [-1, 1] → one enlarged grid, `nrow` images a row (default: about square)."""
    nrow = nrow or max(1, round(len(images) ** 0.5))
    return enlarge(grid(images, min(nrow, len(images))), scale)


def rows_picture(rows: list[torch.Tensor], *, scale: int = SCALE) -> np.ndarray:
    """Rows of images `[(K, C, H, W), ...]` (equal K) stacked into one enlarged picture."""
    return grid_picture(torch.cat(rows), rows[0].shape[0], scale=scale)


def write_png(array: np.ndarray, path: Path) -> Path:
    """Save what `grid_picture` made (gray or RGB) as a PNG."""
    return save_png(array[..., None] if array.ndim == 2 else array, path)


def write_npz(path: Path, images: torch.Tensor, labels: torch.Tensor | None, prompts: list[str] | None = None) -> Path:
    """Images as uint8 NHWC with their labels (-1: none), as `difflab sample --save-npz` writes them."""
    labels_np = labels.numpy() if labels is not None else np.full(len(images), -1)
    extra = {"prompts": np.array(prompts)} if prompts is not None else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    return files.atomic_save(path, lambda out: np.savez_compressed(out, images=to_uint8(images), labels=labels_np, **extra))


__all__ = ["SCALE", "enlarge", "grid_picture", "rows_picture", "write_npz", "write_png"]

"""Strips and grids as report figures: matplotlib, one image per cell, titles on columns and rows."""

from __future__ import annotations

from pathlib import Path

import torch

from difflab.run import files


def save_strip(images: torch.Tensor, path: str | Path, *, columns: list[str], rows: list[str] | None = None,
               title: str | None = None, cell: float = 1.1) -> Path:
    """`images` `(R, K, C, H, W)` in [-1, 1] → PNG with `columns` titles (and `rows` labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from difflab.report.images import to_uint8

    r, k = images.shape[:2]
    pixels = to_uint8(images.flatten(0, 1)).reshape(r, k, *images.shape[-2:], images.shape[2])  # (R, K, H, W, C)
    fig, axes = plt.subplots(r, k, figsize=(cell * k + (0.6 if rows else 0), cell * r + 0.5), squeeze=False)
    for i in range(r):
        for j in range(k):
            ax = axes[i, j]
            p = pixels[i, j]
            ax.imshow(p[..., 0] if p.shape[-1] == 1 else p, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(columns[j], fontsize=7)
            if j == 0 and rows:
                ax.set_ylabel(rows[i], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_save(path, lambda out: fig.savefig(out, format=files.suffix_format(path), dpi=110))
    plt.close(fig)
    return path

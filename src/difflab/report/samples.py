"""Sample pictures every run gets: a class grid (one row per class) and the noise → image trajectory."""

from __future__ import annotations

from pathlib import Path

import torch

from difflab.report.images import grid, save_grid, save_png
from difflab.sampling import class_labels


def write_class_grid(run, path: Path, *, seed: int = 0, per_class: int = 10) -> Path:
    """A 10x10 grid, one row per class (or 100 unconditional samples), with the run's default sampler.

    A text run draws each row from its class's first training caption."""
    labels = class_labels(run.num_classes, per_class) if run.num_classes else None
    images = run.sample(labels, n=None if labels is not None else 100, seed=seed)
    return save_grid(images, path, nrow=per_class)


def write_trajectory(run, path: Path, *, columns: int = 8, seed: int = 0) -> Path:
    """Noise → image: x_t at `columns` evenly spaced steps of the default sampler, one row per class."""
    labels = class_labels(run.num_classes, 1) if run.num_classes else None
    n = None if labels is not None else 10
    steps = run.config.sample_steps
    keep = {round((i + 1) * steps / (columns - 1)) - 1 for i in range(columns - 1)}  # ends at the clean image
    frames: list[torch.Tensor] = []

    def record(_, step):
        if step.index in keep:
            frames.append(step.x.cpu())

    x_T = torch.randn((len(labels) if labels is not None else n, *run.spec.image_shape),
                      generator=torch.Generator().manual_seed(seed))  # the sampler's own first draw
    run.sample(labels, n=n, seed=seed, callback=record)
    columns_first = torch.stack([x_T, *frames], dim=1)  # (rows, columns, C, H, W)
    return save_png(grid(columns_first.flatten(0, 1), columns_first.shape[1]), path, scale=2)


__all__ = ["write_class_grid", "write_trajectory"]

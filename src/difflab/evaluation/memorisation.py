"""Memorisation and diversity: is each generated image a copy of a training image, and how varied are they?

Nearest neighbours are exact (`torch.cdist` in row blocks, pairwise.py), in pixel space and in judge-feature space. The
yardstick is the held-out real split: real test images were never trained on, so their distance to the
nearest training image is what "new but plausible" looks like (the test in Carlini et al. 2023 compares
against such a reference distance). Written here: it is a few lines of `cdist` on top of torch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from difflab.evaluation.pairwise import distance_sum, nearest
from difflab.report.images import grid, save_png

REFERENCE_QUANTILE = 0.05  # generated images closer than 95% of real test images count as "too close"


def memorisation(generated: torch.Tensor, train: torch.Tensor, test: torch.Tensor, *,
                 gen_features: torch.Tensor, train_features: torch.Tensor, test_features: torch.Tensor) -> dict:
    """Nearest-train distances of generated and of real test images, in pixels and in features.

    `fraction_closer_than_test`: share of generated images nearer to the train set than the 5% nearest
    real test images are (≈0.05 for a model that generalises; far above for one that copies)."""
    result, index = {}, None
    for space, g, tr, te in (("pixel", generated, train, test), ("feature", gen_features, train_features, test_features)):
        d_gen, i_gen = nearest(g, tr)
        d_test, _ = nearest(te, tr)
        threshold = float(torch.quantile(d_test, REFERENCE_QUANTILE))
        result[space] = {
            "median_generated_to_train": float(d_gen.median()), "median_test_to_train": float(d_test.median()),
            "reference_quantile": REFERENCE_QUANTILE, "threshold": threshold,
            "fraction_closer_than_test": float((d_gen < threshold).float().mean()),
        }
        if space == "pixel":
            index, distance = i_gen, d_gen
    return {**result, "_nearest_index": index, "_nearest_distance": distance}


def closest_pairs_png(generated: torch.Tensor, train: torch.Tensor, index: torch.Tensor, distance: torch.Tensor,
                      path: Path, *, count: int = 16) -> Path:
    """Top row: the `count` generated images closest to a training image; bottom row: that training image."""
    order = distance.argsort()[:count]
    rows = torch.cat([generated[order], train[index[order]]])  # (2 * count, C, H, W)
    return save_png(grid(rows, nrow=len(order)), path, scale=3)


def mean_pairwise_distance(features: torch.Tensor) -> float:
    """Mean L2 distance over distinct pairs `(N, D)` → float; 0 when all images are the same."""
    if len(features) < 2:
        return float("nan")
    return float(distance_sum(features.float()) / (len(features) * (len(features) - 1)))


def diversity(features: torch.Tensor, labels: torch.Tensor, class_names: tuple[str, ...]) -> dict[str, float]:
    """Per-class mean pairwise feature distance (Heusel-style "mode collapse" check, written here)."""
    return {class_names[c]: mean_pairwise_distance(features[labels == c]) for c in labels.unique().tolist()}

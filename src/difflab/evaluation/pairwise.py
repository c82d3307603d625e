"""Pairwise distances in row blocks, so no N×M matrix is ever held whole.

Precision/recall, memorisation and diversity need nearest neighbours or sums over all pairs; a full
`cdist` of 60,000 training images against 2,000 samples is 0.5 GB, and several of them made
`difflab evaluate` peak near 3 GB. Here each call holds one block of at most `BLOCK_ELEMENTS`
distances (16 MB in float32) and keeps only the per-row result.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

BLOCK_ELEMENTS = 2**22  # distances held at once: 4 M floats = 16 MB (float32), 32 MB (float64)


def row_blocks(n_rows: int, n_cols: int) -> Iterator[slice]:
    """Slices of rows such that rows × `n_cols` stays within `BLOCK_ELEMENTS` (at least one row)."""
    step = max(1, BLOCK_ELEMENTS // max(n_cols, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def nearest(queries: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """L2 distance `(N,)` and index `(N,)` of each query's nearest key; inputs flattened to `(N, D)`."""
    q, k = queries.flatten(1).float(), keys.flatten(1).float()
    dist, idx = zip(*(torch.cdist(q[rows], k).min(dim=1) for rows in row_blocks(len(q), len(k))))
    return torch.cat(dist), torch.cat(idx)


def kth_nearest_distance(queries: torch.Tensor, keys: torch.Tensor, k: int) -> torch.Tensor:
    """Distance `(N,)` of each query to its k-th nearest key (k = 1: the nearest)."""
    q, keys = queries.flatten(1), keys.flatten(1)
    return torch.cat([torch.cdist(q[rows], keys).kthvalue(k, dim=1).values for rows in row_blocks(len(q), len(keys))])


def any_within(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """`(N,)` bool: is each point inside at least one ball (centre, radius)?"""
    return torch.cat([(torch.cdist(points[rows], centres) <= radii).any(dim=1)
                      for rows in row_blocks(len(points), len(centres))])


def distance_sum(features: torch.Tensor) -> torch.Tensor:
    """Sum of L2 distances over all ordered pairs of `(N, D)` (the diagonal adds 0)."""
    return sum((torch.cdist(features[rows], features).sum() for rows in row_blocks(len(features), len(features))),
               torch.zeros((), dtype=features.dtype))


__all__ = ["BLOCK_ELEMENTS", "any_within", "distance_sum", "kth_nearest_distance", "nearest", "row_blocks"]

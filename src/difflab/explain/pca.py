"""Principal components of x_t, x̂₀ or bottleneck features at each timestep of real trajectories.

At t = T the images are pure Gaussian noise, whose covariance is the identity: no direction explains
much more than 1/D of the variance (up to the sampling spread of Marchenko & Pastur 1967). As the
digit emerges the variance concentrates in a few strokes and the spectrum steepens. scikit-learn's PCA
does the decomposition (full SVD of the centred data; Pedregosa et al. 2011).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA

from difflab.errors import UserError
from difflab.explain.trajectories import Trajectory

OF = ("xt", "x0", "features")


@dataclass
class Spectrum:
    """PCA of one timestep: ratios `(k,)`, components `(k, D)`, 2-D scores `(N, 2)`, input dimension D."""

    t: int
    ratios: np.ndarray
    components: np.ndarray
    scores: np.ndarray
    dim: int

    def summary(self) -> dict:
        return dict(t=self.t, dim=self.dim, explained_variance_ratio=self.ratios.round(6).tolist(),
                    top1_times_dim=float(self.ratios[0] * self.dim),  # 1 for a perfectly flat spectrum
                    cumulative_k=float(self.ratios.sum()))


def check_k(k: int, n: int) -> None:
    if k < 2:
        raise UserError(f"--k {k} is too small; fix: use at least 2 components (the scatter needs two)")
    if n < k:
        raise UserError(f"--n {n} is smaller than --k {k}; fix: sample at least k trajectories")


def spectrum(data: torch.Tensor, k: int, t: int, *, seed: int = 0) -> Spectrum:
    """PCA of `(N, ...)` rows flattened to `(N, D)`; `k` is capped at min(N, D)."""
    x = data.flatten(1).double().numpy()  # (N, D)
    k = min(k, *x.shape)
    pca = PCA(n_components=k, svd_solver="full", random_state=seed).fit(x)
    scores = pca.transform(x)[:, :2]  # (N, 2)
    return Spectrum(t, pca.explained_variance_ratio_, pca.components_, scores, x.shape[1])


def pca_over_time(traj: Trajectory, *, k: int = 10, of: str = "xt") -> list[Spectrum]:
    """One `Spectrum` per requested timestep, in the user's order (snapped t recorded in `.t`)."""
    if of not in OF:
        raise UserError(f"--of {of!r} is unknown; fix: use one of {', '.join(OF)}")
    check_k(k, len(traj.final))
    per_t = getattr(traj, of)
    return [spectrum(per_t[t], k, t) for t in traj.actual]

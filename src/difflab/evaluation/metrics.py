"""Distribution metrics on feature vectors: Fréchet distance, KID, precision/recall, IS analogue.

All take features `(N, D)` (the judge's 128-d penultimate layer in difflab, or Inception's 2048-d
pool3 through `fidelity.py`) and return plain floats, so they are independent of the feature extractor.
The Fréchet distance uses scipy's `sqrtm` in float64, as pytorch-fid does. KID, precision/recall and
the IS analogue are written here: torch-fidelity and torchmetrics have them, but importing either fails
wherever torch-fidelity is installed without a working torchvision (torchmetrics then imports
torch-fidelity, which imports torchvision) — the usual case beside a new torch. The tests check them
against torchmetrics' helpers on the same features.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import linalg

from difflab.errors import UserError
from difflab.evaluation.pairwise import any_within, kth_nearest_distance


def gaussian_stats(features: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean `(D,)` and unbiased covariance `(D, D)` in float64; with `weights` `(N,)`, of the weighted set
    (numpy's reliability weights: what resampling each point in proportion to its weight estimates)."""
    f = features.double().cpu().numpy()
    if weights is None:
        return f.mean(axis=0), np.cov(f, rowvar=False)
    w = weights.double().cpu().numpy()
    return np.average(f, axis=0, weights=w), np.cov(f, rowvar=False, aweights=w)


def frechet_distance(a: torch.Tensor, b: torch.Tensor, *, weights_a: torch.Tensor | None = None,
                     weights_b: torch.Tensor | None = None) -> float:
    """||mu_a - mu_b||² + Tr(S_a + S_b - 2 (S_a S_b)^½) (Heusel et al. 2017, eq. 6); `a`, `b`: `(N, D)`,
    optionally weighted per point (`class_match_weights`)."""
    if len(a) < 2 or len(b) < 2:
        raise UserError(f"Fréchet distance needs at least 2 images per set, got {len(a)} and {len(b)}")
    mu_a, s_a = gaussian_stats(a, weights_a)
    mu_b, s_b = gaussian_stats(b, weights_b)
    with warnings.catch_warnings():  # a singular product (dead ReLU features) is handled just below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(s_a @ s_b)
        if not np.isfinite(covmean).all():  # offset the diagonals, as pytorch-fid does
            offset = np.eye(len(s_a)) * 1e-6
            covmean = linalg.sqrtm((s_a + offset) @ (s_b + offset))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.trace(covmean))


def kid(a: torch.Tensor, b: torch.Tensor, *, subsets: int = 50, subset_size: int = 1000, seed: int = 0,
        weights_a: torch.Tensor | None = None, weights_b: torch.Tensor | None = None) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial
    kernel, mean and std over `subsets` random subsets of `subset_size` (capped by the smaller set);
    optionally weighted per point within each subset."""
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise UserError(f"KID needs at least 2 images per set, got {len(a)} and {len(b)}")
    generator = torch.Generator().manual_seed(seed)
    a, b = a.double(), b.double()
    values = []
    for _ in range(subsets):
        ia = torch.randperm(len(a), generator=generator)[:m]
        ib = torch.randperm(len(b), generator=generator)[:m]
        values.append(polynomial_mmd(a[ia], b[ib], None if weights_a is None else weights_a[ia],
                                     None if weights_b is None else weights_b[ib]))
    return float(np.mean(values)), float(np.std(values))


def polynomial_mmd(x: torch.Tensor, y: torch.Tensor, wx: torch.Tensor | None = None,
                   wy: torch.Tensor | None = None) -> float:
    """Unbiased MMD² of `(m, D)` sets, kernel k(u, v) = (u·v / D + 1)³ (Bińkowski et al. 2018, eq. 4);
    with weights `(m,)`, each set's kernel means are weighted (uniform weights give the plain estimate)."""
    m, d = x.shape  # m <= EvalConfig.kid_subset_size (1000): three (m, m) kernels are 24 MB, whatever N
    k_xx, k_yy, k_xy = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (y, y), (x, y)))  # (m, m) each
    vx, vy = (torch.full((m,), 1.0 / m, dtype=k_xx.dtype) if w is None else w.to(k_xx.dtype) / w.sum()
              for w in (wx, wy))
    return float(_within(k_xx, vx) + _within(k_yy, vy) - 2 * (vx @ k_xy @ vy))


def _within(kernel: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Weighted mean of k(u, u') over pairs of distinct points (U-statistic); v sums to 1."""
    return (v @ kernel @ v - (v * v * kernel.diagonal()).sum()) / (1 - (v * v).sum())


def kth_neighbour_radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each point to its k-th nearest other point `(N,)`: the manifold's ball radii."""
    return kth_nearest_distance(features, features, k + 1)  # +1: a point is its own nearest neighbour


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor,
              weights: torch.Tensor | None = None) -> float:
    """Fraction (weighted: share of the weight) of `points` inside at least one ball (centre, radius)."""
    inside = any_within(points, centres, radii).double()
    return float(inside.mean() if weights is None else (inside * weights.double()).sum() / weights.double().sum())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, *, k: int = 3, real_weights: torch.Tensor | None = None,
                     fake_weights: torch.Tensor | None = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019, eq. 1–3) with k-NN manifolds:
    precision = fake inside the real manifold, recall = real inside the fake manifold; optional weights say
    how much each point counts in those fractions (the manifolds are the points themselves)."""
    if min(len(real), len(fake)) <= k:
        raise UserError(f"precision/recall with k={k} needs more than {k} images per set")
    real, fake = real.float(), fake.float()
    precision = _coverage(fake, real, kth_neighbour_radii(real, k), fake_weights)
    recall = _coverage(real, fake, kth_neighbour_radii(fake, k), real_weights)
    return precision, recall


def class_match_weights(labels: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-point weights `(N,)` that give real images of `labels` the class mix of `target` labels: a class
    drawn evenly from data where it is rare (emoji: people are 59% of the set) must be compared with real
    images in the same mix, or a perfect generator scores far from the floor (emoji: FD 70x). Classes absent
    from `target` weigh 0; uniform when the mixes agree."""
    want = torch.bincount(target, minlength=num_classes).double() / len(target)
    have = torch.bincount(labels, minlength=num_classes).double() / len(labels)
    per_class = torch.where(have > 0, want / have.clamp_min(1e-12), torch.zeros_like(want))
    return per_class[labels]


def inception_score(probabilities: torch.Tensor, *, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016), mean and std over `splits` parts; with the
    judge's softmax it is the IS analogue: high when each image is confidently one class and all classes occur.
    The parts are the reference code's, [i·N // splits, (i+1)·N // splits): sizes differ by at most one."""
    n = len(probabilities)
    if not 1 <= splits <= n:
        raise UserError(f"the IS analogue needs 1 <= splits <= N = {n} images, got splits={splits}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))  # class-sorted input
    p = probabilities[order].double().clamp_min(1e-12)  # (N, K)
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits:(i + 1) * n // splits]  # (N // splits or one more, K)
        marginal = chunk.mean(dim=0, keepdim=True)  # (1, K)
        kl = (chunk * (chunk.log() - marginal.log())).sum(dim=1)  # (n,)
        scores.append(float(kl.mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))

"""Distribution metrics: closed-form cases, monotonicity with noise, and agreement with torchmetrics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from difflab.data import load_dataset
from difflab.errors import UserError
from difflab.evaluation import metrics


def gaussian(n: int, d: int = 16, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(123)) / d**0.5  # one correlated distribution
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) @ mix + shift


@pytest.fixture(scope="module")
def real_features(mnist_judge):
    train = load_dataset("mnist5k", split="train")  # sorted by class: draw a random 2,000
    images = train.images[torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:2000]]
    return mnist_judge.features(images), images


def test_fd_of_a_set_with_itself_is_zero():
    x = gaussian(500)
    assert abs(metrics.frechet_distance(x, x)) < 1e-6
    assert metrics.frechet_distance(x, x + 1.0) == pytest.approx(16.0, rel=1e-6)  # ||mu shift||² = 16 × 1²


def test_fd_matches_torchmetrics(torchmetrics_math):
    _compute_fid, _ = torchmetrics_math
    a, b = gaussian(800, 32, seed=1), gaussian(600, 32, shift=0.3, seed=2) * 1.5
    ours = metrics.frechet_distance(a, b)
    mu_a, s_a = (torch.from_numpy(v) for v in metrics.gaussian_stats(a))
    mu_b, s_b = (torch.from_numpy(v) for v in metrics.gaussian_stats(b))
    theirs = float(_compute_fid(mu_a, s_a, mu_b, s_b))
    assert abs(ours - theirs) <= 1e-3 * abs(theirs), (ours, theirs)


def test_fd_grows_monotonically_with_noise(mnist_judge, real_features):
    feats, images = real_features
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(images[1000:].shape, generator=g)
    fds = [metrics.frechet_distance(mnist_judge.features((images[1000:] + s * noise).clamp(-1, 1)), feats[:1000])
           for s in (0.0, 0.1, 0.3, 0.6, 1.0)]
    assert all(b > a for a, b in itertools.pairwise(fds)), fds


def test_polynomial_mmd_matches_torchmetrics(torchmetrics_math):
    _, poly_mmd = torchmetrics_math
    a, b = gaussian(300, 32, seed=7).double(), gaussian(300, 32, shift=0.2, seed=8).double()
    theirs = float(poly_mmd(a, b, degree=3, gamma=None, coef=1.0))
    assert abs(metrics.polynomial_mmd(a, b) - theirs) <= 1e-9 + 1e-6 * abs(theirs)


def test_kid_is_unbiased_for_two_real_splits(real_features):
    feats, _ = real_features
    same_mean, same_std = metrics.kid(feats[:1000], feats[1000:], subsets=20, subset_size=500)
    shifted, _ = metrics.kid(feats[:1000], feats[1000:] * 1.2, subsets=20, subset_size=500)  # a 20% feature scaling
    assert abs(same_mean) < 3 * same_std + 1e-9 and abs(same_mean) < 0.05 * shifted, (same_mean, same_std, shifted)


def test_kid_unbiased_on_gaussians_where_fd_is_not():
    a, b = gaussian(400, seed=3), gaussian(400, seed=4)  # same distribution, different draws
    mean, std = metrics.kid(a, b, subsets=30, subset_size=200)
    assert abs(mean) < 3 * std
    assert metrics.frechet_distance(a, b) > 0.1  # FD's small-sample bias: why the floor is printed beside it


def test_precision_recall_real_vs_real_high_real_vs_noise_zero(mnist_judge, real_features):
    feats, images = real_features
    p, r = metrics.precision_recall(feats[:1000], feats[1000:])
    assert p > 0.7 and r > 0.7, (p, r)
    noise = torch.rand(images[:500].shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    p, r = metrics.precision_recall(feats[:1000], mnist_judge.features(noise))
    assert p < 0.05 and r < 0.05, (p, r)


def test_precision_recall_of_a_collapsed_generator_is_high_precision_low_recall():
    real = gaussian(600, seed=5)
    collapsed = real[:20].repeat(30, 1) + 1e-3 * gaussian(600, seed=6)  # 20 modes only
    p, r = metrics.precision_recall(real, collapsed)
    assert p > 0.9 and r < 0.3, (p, r)


def test_inception_score_closed_forms():
    confident = torch.eye(10).repeat(10, 1)  # every class, each image certain: IS = number of classes
    assert metrics.inception_score(confident, splits=1)[0] == pytest.approx(10.0, rel=1e-6)
    assert metrics.inception_score(torch.full((100, 10), 0.1), splits=2)[0] == pytest.approx(1.0)
    sorted_by_class = torch.eye(10).repeat_interleave(10, dim=0)  # chunks must not each hold one class
    assert metrics.inception_score(sorted_by_class, splits=5)[0] > 6.0
    one_class = torch.zeros(100, 10)
    one_class[:, 3] = 1.0
    assert metrics.inception_score(one_class, splits=2)[0] == pytest.approx(1.0)


def test_inception_score_splits_evenly_as_the_reference_code():
    """N = 1005, 10 splits: parts of 100 or 101 (Salimans et al.'s slicing), not chunk()'s 101 × 9 + 96."""
    probs = torch.softmax(torch.randn(1005, 10, generator=torch.Generator().manual_seed(0)) * 3, dim=1)
    order = torch.randperm(1005, generator=torch.Generator().manual_seed(0))  # the function's shuffle
    p = probs[order].double().clamp_min(1e-12)
    parts = [p[i * 1005 // 10:(i + 1) * 1005 // 10] for i in range(10)]
    assert sorted({len(part) for part in parts}) == [100, 101]
    scores = [float((q * (q.log() - q.mean(0, keepdim=True).log())).sum(1).mean().exp()) for q in parts]
    mean, std = metrics.inception_score(probs, splits=10)
    assert mean == pytest.approx(float(np.mean(scores)), rel=1e-12)
    assert std == pytest.approx(float(np.std(scores)), rel=1e-12)
    chunked = [float((q * (q.log() - q.mean(0, keepdim=True).log())).sum(1).mean().exp()) for q in p.chunk(10)]
    assert std != pytest.approx(float(np.std(chunked)), rel=1e-9)  # the old, uneven split gives another figure
    with pytest.raises(UserError, match="splits=11"):
        metrics.inception_score(probs[:10], splits=11)


def test_too_few_images_is_a_user_error():
    with pytest.raises(ValueError, match="at least 2"):
        metrics.frechet_distance(gaussian(1), gaussian(10))
    with pytest.raises(ValueError, match="k=3"):
        metrics.precision_recall(gaussian(3), gaussian(10))

"""The FD reference set: fixed size, seeded, the same at every n, disjoint from the real floor set."""

from __future__ import annotations

import pytest
import torch

from difflab.errors import UserError
from difflab.evaluation import metrics
from difflab.evaluation.suite import EvalConfig, fixed_reference, reference_split

N_TRAIN = 4500  # mnist5k's train split


def test_reference_is_the_same_set_at_every_n():
    ref0, _ = reference_split(N_TRAIN, 40, 0, 2000)
    for n in (100, 1000, 2500, 4500):
        ref, floor = reference_split(N_TRAIN, n, 0, 2000)
        assert torch.equal(ref, ref0), n  # the old split gave 4,460 reference images at n=40 and 2,250 at n=2,250
        assert len(floor) == min(n, N_TRAIN - 2000)
        assert not set(ref.tolist()) & set(floor.tolist())


def test_default_reference_size_and_the_helper_agree():
    ref, pool = fixed_reference(N_TRAIN, size=EvalConfig().reference_size, seed=0)
    assert len(ref) == 2000 and len(pool) == 2500
    assert sorted(torch.cat([ref, pool]).tolist()) == list(range(N_TRAIN))  # a partition of the train split
    assert torch.equal(reference_split(N_TRAIN, 700, 0, 2000)[1], pool[:700])  # the floor is the pool's head


def test_reference_is_seeded_and_capped_at_half_a_small_dataset():
    a, _ = fixed_reference(N_TRAIN, size=2000, seed=0)
    b, _ = fixed_reference(N_TRAIN, size=2000, seed=1)
    assert torch.equal(a, fixed_reference(N_TRAIN, size=2000, seed=0)[0]) and not torch.equal(a, b)
    ref, floor = reference_split(300, 1000, 0, 2000)  # a 300-image dataset: 150 reference, 150 floor
    assert len(ref) == 150 and len(floor) == 150


def test_fd_at_two_sample_sizes_uses_one_reference():
    """Features of one distribution: FD of n=300 and n=1,200 draws are measured against the same set."""
    feats = torch.randn(N_TRAIN, 8, generator=torch.Generator().manual_seed(0))
    gen = torch.randn(1200, 8, generator=torch.Generator().manual_seed(1))
    (ref_small, _), (ref_large, _) = reference_split(N_TRAIN, 300, 0, 2000), reference_split(N_TRAIN, 1200, 0, 2000)
    fd_small = metrics.frechet_distance(gen[:300], feats[ref_small])  # gen is i.i.d., not class-ordered
    fd_large = metrics.frechet_distance(gen, feats[ref_large])
    assert fd_large < fd_small < 0.2  # only the generated sample's own bias shrinks with n


@pytest.mark.parametrize("args", [dict(n_train=10, size=0, seed=0), dict(n_train=1, size=5, seed=0)])
def test_bad_reference_sizes_are_refused(args):
    with pytest.raises(UserError, match="reference set"):
        fixed_reference(**args)

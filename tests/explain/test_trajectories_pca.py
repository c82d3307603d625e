"""Trajectories are read at the right steps, snapped honestly, and PCA spectra are proper ratios."""

import numpy as np
import pytest
import torch

from difflab.errors import UserError
from difflab.explain.pca import pca_over_time, spectrum
from difflab.explain.trajectories import collect, find_module, snap
from difflab.run import Run


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run if isinstance(tiny_run, Run) else Run.load(tiny_run)


def test_snap_goes_to_the_nearest_visited_step_and_keeps_the_clean_end():
    visited = [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert snap([999, 750, 500, 250, 0], visited, 1000) == [999, 799, 499, 299, 0]
    assert snap([849], visited, 1000) == [899]  # a tie goes to the noisier step
    with pytest.raises(UserError, match="1000 is outside 0..999"):
        snap([1000], visited, 1000)
    with pytest.raises(UserError, match="no timesteps"):
        snap([], visited, 1000)


def test_collect_reads_the_sampler_at_the_snapped_steps(run):
    labels = torch.tensor([0, 1, 2, 3, 4, 5])
    traj = collect(run, labels, timesteps=[999, 600, 0], seed=5, settings=dict(steps=4, guidance=3.0))
    assert traj.actual == [999, 499, 0]  # 4 trailing steps visit 999, 749, 499, 249
    start = torch.randn((6, 1, 28, 28), generator=torch.Generator().manual_seed(5))
    assert torch.equal(traj.xt[999], start)  # the cond half of the CFG batch, not the null half
    assert torch.equal(traj.xt[0], traj.final) and torch.equal(traj.x0[0], traj.final)
    assert traj.features[499].shape == (6, 16, 14, 14)  # the bottleneck of channels (8, 16)
    assert not torch.equal(traj.xt[499], traj.xt[999]) and traj.x0[499].shape == (6, 1, 28, 28)
    again = run.sample(labels, seed=5, steps=4, guidance=3.0)
    assert torch.equal(again, traj.final)  # observing changes nothing


def test_find_module_names_valid_layers(run):
    assert find_module(run.model, "mid2") is run.model.mid2
    with pytest.raises(UserError, match="conv_out"):
        find_module(run.model, "up.9.conv")


def test_spectrum_ratios_are_bounded_and_sorted():
    g = torch.Generator().manual_seed(0)
    basis = torch.randn(3, 50, generator=g)
    low_rank = torch.randn(200, 3, generator=g) @ basis + 0.01 * torch.randn(200, 50, generator=g)
    s = spectrum(low_rank, k=8, t=0)
    assert s.ratios.sum() <= 1 + 1e-9 and np.all(np.diff(s.ratios) <= 1e-12)
    assert s.ratios[:3].sum() > 0.99 and s.components.shape == (8, 50) and s.scores.shape == (200, 2)
    flat = spectrum(torch.randn(2000, 20, generator=g), k=5, t=999)
    assert flat.ratios[0] * 20 < 1.3  # white noise: no direction much above 1/D


def test_pca_over_time_follows_the_requested_order(run):
    traj = collect(run, torch.arange(12) % 10, timesteps=[0, 999], seed=0, settings=dict(steps=2))
    spectra = pca_over_time(traj, k=4, of="features")
    assert [s.t for s in spectra] == [0, 999] and spectra[0].dim == 16 * 14 * 14
    with pytest.raises(UserError, match="--of"):
        pca_over_time(traj, k=4, of="eps")
    with pytest.raises(UserError, match="--n 12 is smaller than --k 20"):
        pca_over_time(traj, k=20)

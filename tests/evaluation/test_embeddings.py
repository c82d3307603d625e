"""U-Net bottleneck embeddings: shape, no hook left behind, files written."""

from __future__ import annotations

import numpy as np
import torch

from difflab.evaluation.embeddings import bottleneck_features, save_embeddings
from difflab.run import Run


def test_bottleneck_features_shape_and_hook_removed(tiny_run):
    run = Run.load(tiny_run.path)
    images = torch.rand(6, 1, 28, 28) * 2 - 1
    feats = bottleneck_features(run.model, images, batch_size=4)
    assert feats.shape == (6, run.model.spec.channels[-1])
    assert not run.model.mid2._forward_hooks
    torch.testing.assert_close(feats[:3], bottleneck_features(run.model, images[:3]))  # batch split does not matter


def test_save_embeddings_writes_npy_and_map(tiny_run, tmp_path):
    run = Run.load(tiny_run.path)
    images, labels = torch.rand(30, 1, 28, 28) * 2 - 1, torch.arange(30) % 10
    info = save_embeddings(run.model, images, labels, run.class_names, tmp_path)
    assert np.load(tmp_path / "embeddings.npy").shape == (30, info["embedding_dim"])
    assert (tmp_path / "embedding_map.png").stat().st_size > 1000

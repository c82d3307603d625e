"""Memorisation and diversity: copies are flagged, fresh real images are not."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from difflab.data import load_dataset
from difflab.evaluation import memorisation as mem


def _report(generated, train, test):
    flat = lambda x: x.flatten(1)  # pixels double as features here: no judge needed
    return mem.memorisation(generated, train, test, gen_features=flat(generated), train_features=flat(train),
                            test_features=flat(test))


def test_copies_of_train_images_are_flagged_and_fresh_real_images_are_not():
    train, test = load_dataset("mnist5k", split="train"), load_dataset("mnist5k", split="test")
    copies = _report(train.images[:200], train.images, test.images)
    assert copies["pixel"]["fraction_closer_than_test"] == 1.0
    assert (copies["_nearest_index"] == torch.arange(200)).all()
    assert copies["_nearest_distance"].max() < 0.05  # 0 up to float32 matmul-based cdist rounding (norms ~20)
    shuffled = test.images[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))]  # sorted by class
    fresh = _report(shuffled[:250], train.images, shuffled[250:])  # held-out reals, not in the yardstick
    assert fresh["pixel"]["fraction_closer_than_test"] < 0.12, fresh["pixel"]  # ≈ 0.05 expected


def test_closest_pairs_picture_puts_each_generated_image_above_its_neighbour(tmp_path):
    train = load_dataset("mnist5k", split="train").images[:50]
    generated = train[[7, 3, 9]] + 0.01
    dist, idx = mem.nearest(generated, train)
    path = mem.closest_pairs_png(generated, train, idx, dist, tmp_path / "pairs.png", count=16)
    pixels = np.asarray(Image.open(path))
    assert pixels.shape[:2] == (3 * (2 * 30 + 2), 3 * (3 * 30 + 2))  # 2 rows x 3 columns of 28+2 px, x3 scale
    assert idx.tolist() == [7, 3, 9]


def test_diversity_is_zero_for_identical_images_and_positive_otherwise():
    feats = torch.cat([torch.ones(5, 4), torch.randn(5, 4, generator=torch.Generator().manual_seed(0))])
    labels = torch.tensor([0] * 5 + [1] * 5)
    div = mem.diversity(feats, labels, ("a", "b"))
    assert div["a"] == 0.0 and div["b"] > 0.5

"""Unconditional samples are compared with an unconditional floor: diversity over all real images, not
within classes (a generator with no labels would otherwise look twice as varied as the data)."""

import pytest

from difflab.evaluation.quality import QualityProbe


@pytest.mark.slow  # loads the mnist5k judge
def test_unlabelled_samples_get_the_unlabelled_floor(mnist_judge):
    probe = QualityProbe("mnist5k")
    outside = probe._split(200)[1]  # 200 real images outside the reference
    real, labels = probe.train.images[outside], probe.train.labels[outside]
    unlabelled, labelled = probe.measure(real, None), probe.measure(real, labels)
    assert unlabelled["diversity_floor"] > 1.5 * labelled["diversity_floor"]  # all digits vs within a digit
    # real images outside the reference ARE the floor: each measure matches its own floor exactly
    assert unlabelled["diversity"] == pytest.approx(unlabelled["diversity_floor"])
    assert labelled["diversity"] == pytest.approx(labelled["diversity_floor"])
    assert unlabelled["fd_ratio"] == pytest.approx(1.0) and "accuracy" not in unlabelled

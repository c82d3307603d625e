"""The abstaining judge: which digits become "idk", caching, and accuracy-vs-coverage arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.data import ImageDataset
from difflab.evaluation import idk


class FixedJudge:
    """A stand-in judge whose probabilities are given, so the hardest digits are known in advance."""

    def __init__(self, probs):
        self.probs = probs

    def probabilities(self, images):
        return self.probs


def tiny_dataset(n=256, classes=10):
    g = torch.Generator().manual_seed(0)
    return ImageDataset(torch.rand(n, 1, 28, 28, generator=g) * 2 - 1, torch.arange(n) % classes,
                        tuple(str(c) for c in range(classes)), "tiny")


def test_hardest_fraction_is_relabelled_idk():
    data = tiny_dataset(100)
    probs = torch.full((100, 10), 0.05)
    probs[torch.arange(100), data.labels] = torch.linspace(0.01, 0.99, 100)  # digit i: p_true rises with i
    relabelled = idk.idk_dataset(data, FixedJudge(probs), 0.1)
    assert relabelled.class_names[-1] == "idk" and relabelled.num_classes == 11
    assert (relabelled.labels[:10] == 10).all() and (relabelled.labels[10:] == data.labels[10:]).all()


def test_idk_judges_have_an_extra_class_and_are_cached(monkeypatch):
    data = tiny_dataset()
    judge = FixedJudge(torch.softmax(torch.randn(256, 10, generator=torch.Generator().manual_seed(1)), 1))
    nets = idk.load_idk_judges("tiny", judge, fractions=(0.1,), epochs=1, train=data)
    assert nets[0.1].head.out_features == 11
    monkeypatch.setattr(idk, "train_judge", lambda *a, **k: pytest.fail("retrained despite the cache"))
    again = idk.load_idk_judges("tiny", judge, fractions=(0.1,), epochs=1, train=data)
    assert all(torch.equal(a, b) for a, b in zip(nets[0.1].state_dict().values(), again[0.1].state_dict().values()))


def test_coverage_curve_keeps_the_most_confident_first():
    confidence = torch.tensor([0.9, 0.2, 0.8, 0.1])
    correct = torch.tensor([True, False, True, True])
    coverage, accuracy = idk.coverage_curve(confidence, correct)
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(accuracy, [1.0, 1.0, 2 / 3, 0.75])
    assert idk.accuracy_at(coverage, accuracy, 0.5) == 1.0 and idk.accuracy_at(coverage, accuracy, 1.0) == 0.75


def test_selective_report_on_real_judge_abstaining_raises_accuracy(mnist_judge):
    from difflab.data import load_dataset

    test = load_dataset("mnist5k", split="test")
    noisy = (test.images + 0.8 * torch.randn(test.images.shape, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    report = idk.selective_report(mnist_judge, {}, noisy, test.labels)
    table = report["accuracy_at_coverage"]["judge max-softmax"]
    assert table["0.5"] > table["1"] + 0.05, table  # thresholding on confidence must pay off on hard images

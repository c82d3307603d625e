"""The quality yardstick compares like with like: real images weighted to the samples' class mix."""

import torch

from difflab.evaluation import metrics


def _two_classes(n0: int, n1: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.zeros(n0, dtype=torch.long), torch.ones(n1, dtype=torch.long)])
    centres = torch.tensor([[0.0] * 8, [4.0] * 8])
    return centres[labels] + torch.randn(len(labels), 8, generator=g), labels


def test_uniform_weights_change_nothing():
    a, _ = _two_classes(300, 300, 0)
    b, _ = _two_classes(300, 300, 1)
    ones_a, ones_b = torch.ones(len(a)), torch.ones(len(b))
    assert abs(metrics.frechet_distance(a, b, weights_a=ones_a, weights_b=ones_b) - metrics.frechet_distance(a, b)) < 1e-9
    assert abs(metrics.polynomial_mmd(a, b, ones_a, ones_b) - metrics.polynomial_mmd(a, b)) < 1e-9
    assert metrics.precision_recall(b, a, real_weights=ones_b, fake_weights=ones_a) == metrics.precision_recall(b, a)


def test_an_evenly_drawn_perfect_generator_meets_a_skewed_reference_at_the_floor():
    reference, ref_labels = _two_classes(900, 100, 2)  # the data: 90% class 0
    even, even_labels = _two_classes(500, 500, 3)  # real images of the same classes, drawn evenly
    unweighted = metrics.frechet_distance(even, reference)
    weights = metrics.class_match_weights(ref_labels, even_labels, 2)
    assert weights[ref_labels == 1].sub(5.0).abs().max() < 1e-9 and weights[ref_labels == 0].sub(5 / 9).abs().max() < 1e-9
    weighted = metrics.frechet_distance(even, reference, weights_b=weights)
    assert unweighted > 5 and weighted < 0.2 * unweighted  # the class mix, not the images, made the distance
    assert metrics.class_match_weights(ref_labels, torch.zeros(10, dtype=torch.long), 2)[ref_labels == 1].eq(0).all()

"""Issue 20: evaluate streams its work, so peak memory stays bounded whatever the number of images.

Checked by structure, not by RSS: no pairwise matrix beyond one block, sampling and judging in chunks."""

from __future__ import annotations

import torch

from difflab.evaluation import memorisation as mem
from difflab.evaluation import metrics, pairwise


def _watch_cdist(monkeypatch) -> list[tuple[int, int]]:
    seen, cdist = [], torch.cdist

    def recording(a, b, *args, **kwargs):
        seen.append((len(a), len(b)))
        return cdist(a, b, *args, **kwargs)

    monkeypatch.setattr(pairwise.torch, "cdist", recording)
    return seen


def test_no_pairwise_matrix_beyond_one_block(monkeypatch):
    monkeypatch.setattr(pairwise, "BLOCK_ELEMENTS", 1000)  # blocks of 1000 distances: 25 rows of 40
    seen = _watch_cdist(monkeypatch)
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(40, 8, generator=g), torch.randn(30, 8, generator=g)
    metrics.precision_recall(real, fake, k=3)
    mem.memorisation(fake.view(30, 2, 2, 2), real.view(40, 2, 2, 2), real[:20].view(20, 2, 2, 2), gen_features=fake,
                     train_features=real, test_features=real[:20])
    mem.diversity(real, torch.arange(40) % 2, ("a", "b"))
    assert seen and all(rows * cols <= 1000 for rows, cols in seen), seen


def test_blocked_results_equal_the_whole_matrix(monkeypatch):
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(50, 6, generator=g), torch.randn(70, 6, generator=g)
    full = torch.cdist(a, b)  # (50, 70)
    monkeypatch.setattr(pairwise, "BLOCK_ELEMENTS", 7 * 70)  # 8 blocks of 7 rows (the last of 1)
    dist, idx = pairwise.nearest(a, b)
    assert torch.equal(idx, full.argmin(1)) and torch.allclose(dist, full.min(1).values)
    assert torch.allclose(pairwise.kth_nearest_distance(a, b, 3), full.kthvalue(3, dim=1).values)
    radii = torch.full((70,), 2.0)
    assert torch.equal(pairwise.any_within(a, b, radii), (full <= radii).any(1))
    assert torch.allclose(pairwise.distance_sum(a), torch.cdist(a, a).sum())


def test_evaluate_samples_in_chunks_and_judges_in_batches():
    from difflab.evaluation import judge, suite

    assert suite.EVAL_CHUNK <= 250 and judge.BATCH <= 250

    chunks: list[int] = []

    class Run:
        def sample_chunks(self, labels, *, n, seed, chunk_size, **settings):
            for start in range(0, len(labels), chunk_size):
                chunks.append(min(chunk_size, len(labels) - start))
                yield None, torch.zeros(chunks[-1], 1, 4, 4)

    images = suite.sample_shown(Run(), torch.arange(600) % 10, n=None, seed=0)
    assert images.shape == (600, 1, 4, 4) and max(chunks) <= suite.EVAL_CHUNK and sum(chunks) == 600

"""Quality at a glance: the few numbers that say whether samples are recognisable AND look like the data.

Judge accuracy alone saturates (a model that draws one perfect 7 ten times scores 100%), so a
`QualityProbe` reports it beside the distribution numbers that catch collapse — FD against a fixed
reference set with its real-vs-real floor, KID, precision/recall and within-class diversity — for one
set of class-conditional samples. It is the measuring stick of `benchmarks/quality.py` and of the
report's guidance sweep; `difflab evaluate` runs the full suite (`evaluation/suite.py`).

The reference is a fixed, seeded set of `reference_size` real train images, and the floor is as many
other real images as there are samples, so FD/floor does not drift with n and two probes compare. With
labels, both are weighted to the samples' class mix (`metrics.class_match_weights`): samples drawn evenly
per class are compared with real images in that mix, not the data's own — on emoji, whose groups range
from 2% to 59% of the set, evenly drawn REAL images scored FD 70x the floor against the unweighted reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from difflab.errors import UserError
from difflab.evaluation import metrics
from difflab.evaluation.memorisation import mean_pairwise_distance
from difflab.evaluation.suite import _reference, features64, reference_split

REFERENCE_SIZE = 2000  # real train images every FD here is measured against (mnist5k has 4,500)


@dataclass
class QualityProbe:
    """`QualityProbe("mnist5k").measure(images, labels)` → accuracy, confidence, FD/floor, KID, P/R, diversity."""

    dataset: str
    reference_size: int = REFERENCE_SIZE
    seed: int = 0
    data_dir: str | None = None
    image_size: int | None = None
    _floors: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.judge, self.judge64, self.train, _, self.train_features, _ = _reference(
            self.dataset, self.data_dir, self.image_size)

    def _split(self, n: int):
        return reference_split(len(self.train), n, self.seed, self.reference_size)

    def floor(self, n: int, *, by_class: bool = True, labels: torch.Tensor | None = None) -> dict:
        """The same numbers for `n` real images outside the reference: what a perfect generator scores.
        `labels`: the samples' classes, whose mix the floor and reference are weighted to;
        `by_class=False`: diversity over all of them, as for unconditional samples (which have no labels)."""
        mix = tuple(torch.bincount(labels, minlength=self.train.num_classes).tolist()) if labels is not None else None
        key = (n, by_class, mix)
        if key not in self._floors:
            ref, floor = self._split(n)
            feats = self.train_features
            real = self.train.images[floor]
            floor_labels = self.train.labels[floor]
            self._floors[key] = self._distribution(feats[floor], feats[ref], floor_labels if by_class else None,
                                                   ref_weights=self._weights(ref, labels),
                                                   gen_weights=self._weights(floor, labels))
            probs = self.judge64.probabilities(real.double())
            self._floors[key]["confidence"] = float(probs.max(1).values.mean())
        return self._floors[key]

    def _weights(self, idx: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        """Weights of train images `idx` that give them the class mix of `labels` (None: no labels, no weights)."""
        if labels is None:
            return None
        return metrics.class_match_weights(self.train.labels[idx], labels.cpu(), self.train.num_classes)

    def _distribution(self, gen: torch.Tensor, ref: torch.Tensor, labels: torch.Tensor | None, *,
                      ref_weights: torch.Tensor | None = None, gen_weights: torch.Tensor | None = None) -> dict:
        precision, recall = metrics.precision_recall(ref, gen, k=3, real_weights=ref_weights, fake_weights=gen_weights)
        kid_mean, _ = metrics.kid(gen, ref, subsets=20, subset_size=min(1000, len(gen)), seed=self.seed,
                                  weights_a=gen_weights, weights_b=ref_weights)
        groups = labels if labels is not None else torch.zeros(len(gen), dtype=torch.long)
        diversity = sum(mean_pairwise_distance(gen[groups == c]) for c in groups.unique().tolist()) / len(groups.unique())
        fd = metrics.frechet_distance(gen, ref, weights_a=gen_weights, weights_b=ref_weights)
        return {"fd": fd, "kid": kid_mean, "precision": precision, "recall": recall, "diversity": diversity}

    @torch.no_grad()
    def measure(self, images: torch.Tensor, labels: torch.Tensor | None) -> dict:
        """Every number of `images` `(N, C, H, W)` in [-1, 1] (class `labels` `(N,)` or None), with its floor."""
        if len(images) < 20:
            raise UserError(f"a quality probe needs at least 20 images, got {len(images)}")
        ref, _ = self._split(len(images))
        gen = features64(self.judge64.net, images)
        out = self._distribution(gen, self.train_features[ref], labels, ref_weights=self._weights(ref, labels))
        probs = self.judge64.probabilities(images.double())
        out["confidence"] = float(probs.max(1).values.mean())
        if labels is not None:
            out["accuracy"] = float((probs.argmax(1) == labels).float().mean())
            out["accuracy_real"] = self.judge.real_accuracy(labels)  # held-out real images in the same class mix
        floor = self.floor(len(images), by_class=labels is not None, labels=labels)
        out.update({"n": len(images), "n_reference": len(ref), "fd_floor": floor["fd"],
                    "fd_ratio": out["fd"] / floor["fd"], "recall_floor": floor["recall"],
                    "precision_floor": floor["precision"], "diversity_floor": floor["diversity"],
                    "confidence_floor": floor["confidence"]})
        return out


__all__ = ["REFERENCE_SIZE", "QualityProbe"]

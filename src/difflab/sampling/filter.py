"""`SampleFilter`: redraw the samples a classifier of the run's data does not recognise (rejection sampling).

Guidance buys recognisable samples by pulling every sample towards its class's mode, and past ~98% that costs
the variety (FD 2x the real floor at 99% on mnist5k). Rejecting the few samples that do not look like their
class, and drawing those again, buys the last percent without moving the others: with weak guidance (CFG 1.3
on the high-noise half) and this filter, mnist5k's default scores 100.0% / FD 1.23x the real floor / recall
0.86 at 1.06 draws per image, where CFG alone needed FD 2x for 99% (benchmarks/RESULTS.md, "Rejection by a
filter classifier"; those FDs are on the unweighted yardstick of the time: on the class-mix-weighted one the
default is 1.97x, without the filter 2.11x — RESULTS' first section). The same idea as discriminator rejection sampling (Azadi et al. 2019) and DALL-E's
reranking, with a classifier.

The filter is a `JudgeNet` trained at the end of training on the run's train split with its own seed, so it
is not the judge that scores the run (a classifier of another architecture agrees: benchmarks/second_opinion.py). Its
threshold is calibrated on held-out real images: a sample must be as sure of its class (unconditional: of any
class) as `keep` of the real ones are, so a dataset whose real images are ambiguous (emoji groups) gets a
lenient filter and no endless redraws. It lives in the run folder (`filter.safetensors` + `filter.json`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from difflab.errors import UserError
from difflab.nn.judge import class_probabilities

FILTER_SEED = 1  # the judge trains with seed 0: another seed, so the filter is not the yardstick
FILTER_STEPS = 300  # optimizer steps of its training: mnist5k gets the judge's 8 epochs, 60k sets 1 (minutes)
BATCH = 250


@dataclass
class SampleFilter:
    """A classifier and the least class probability a sample needs to be kept."""

    net: torch.nn.Module
    threshold: float  # p(asked class | x) (unconditional: max p) below this is redrawn
    keep: float  # the fraction of held-out real images that pass it
    accuracy: float  # on the held-out real split

    def scores(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """`(N,)`: the probability of each image's asked class, or of its likeliest class where none was asked
        (`labels` None, or the null class id of CFG's unconditional branch)."""
        return _asked_or_likeliest(class_probabilities(self.net, images.float(), BATCH), labels)

    def meta(self) -> dict:
        return {"model": self.net.config, "threshold": self.threshold, "keep": self.keep, "accuracy": self.accuracy}


def _asked_or_likeliest(probs: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    likeliest = probs.max(1).values
    if labels is None:
        return likeliest
    labels = labels.to(probs.device)
    asked = labels < probs.shape[1]
    return torch.where(asked, probs[torch.arange(len(labels)), labels.clamp(max=probs.shape[1] - 1)], likeliest)


def train_filter(train, test, *, keep: float, progress: str | None = None) -> SampleFilter:
    """A `SampleFilter` for `train` (an `ImageDataset` with >= 2 classes), its threshold calibrated on `test`."""
    from difflab.evaluation.judge import train_judge

    if not 0 < keep < 1:
        raise UserError(f"--filter-keep must be in (0, 1) (0 turns the filter off), got {keep}")
    epochs = max(1, min(8, round(FILTER_STEPS * 128 / len(train))))
    net = train_judge(train, epochs=epochs, seed=FILTER_SEED, progress=progress)
    probs = class_probabilities(net, test.images.float(), BATCH)  # once: the accuracy and the threshold
    accuracy = float((probs.argmax(1) == test.labels).float().mean()) if len(test) else 0.0
    true = _asked_or_likeliest(probs, test.labels)
    threshold = float(torch.quantile(true.double(), 1 - keep)) if len(true) else 0.5
    return SampleFilter(net, threshold, keep, accuracy)


def seeded_noise(seed: int, draw: int, index: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """The starting noise of redraw `draw` of the images at global `index`: one generator per image, so a
    redraw is the same whatever the chunk size."""
    out = torch.empty((len(index), *shape))
    for row, i in enumerate(index.tolist()):
        state = np.random.SeedSequence([seed, draw, i]).generate_state(2, dtype=np.uint32)
        generator = torch.Generator().manual_seed(int(state[0]) << 31 ^ int(state[1]))
        out[row] = torch.randn(shape, generator=generator)
    return out


@dataclass
class Redraws:
    """How many images the filter sent back: `difflab sample` says it, so the extra time is explained."""

    images: int = 0  # images the filter looked at
    redrawn: int = 0  # of those, drawn at least once more
    draws: int = 0  # every extra draw (an image redrawn twice counts 2): the extra sampling cost
    kept_unsure: int = 0  # still under the threshold after every redraw: the most recognisable draw is kept

    def record(self, redraws: int) -> dict:
        """What an evaluation JSON keeps of it: the sampler's `redraws` (0 where no filter looked) and the counts."""
        return {"redraws": redraws if self.images else 0, "redrawn": self.redrawn, "kept_unsure": self.kept_unsure}

    def line(self) -> str:
        if not self.images:
            return ""
        text = f"filter: {self.redrawn:,} of {self.images:,} images redrawn"
        if self.kept_unsure:
            text += f"; {self.kept_unsure:,} kept the most recognisable of their draws"
        return text


__all__ = ["FILTER_SEED", "Redraws", "SampleFilter", "seeded_noise", "train_filter"]

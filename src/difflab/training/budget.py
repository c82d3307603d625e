"""How far a run is through its budget, and the learning rate that follows from it.

A budget is any of steps, epochs and minutes (the first one spent ends the run); the progress
fraction is the largest of the three, so the LR schedule, the progress bar and the sample grids see
one number whichever budget the user gave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Counters:
    """Where the run is; saved in the snapshot and shared by the loop's collaborators."""

    step: int = 0  # optimiser steps taken (a skipped step counts only with deferred checks)
    seen: int = 0  # training images drawn
    elapsed: float = 0.0  # seconds of training, agreed over ranks


@dataclass(frozen=True)
class Budget:
    steps: int | None = None  # optimiser steps
    epochs: float | None = None  # passes over `dataset_size` images
    dataset_size: int = 0
    minutes: float | None = None  # training time (the loop's agreed clock)

    @classmethod
    def of(cls, config, dataset_size: int) -> Budget:
        return cls(config.steps, config.epochs, dataset_size, config.minutes)

    def fraction(self, n: Counters) -> float:
        """Fraction of the budget used: the largest over steps, epochs and minutes."""
        fractions = [0.0]
        if self.steps:
            fractions.append(n.step / self.steps)
        if self.epochs:
            fractions.append(n.seen / (self.epochs * self.dataset_size))
        if self.minutes:
            fractions.append(n.elapsed / (60 * self.minutes))
        return max(fractions)


@dataclass(frozen=True)
class WarmupCosine:
    """Linear warm-up over `warmup_steps`, then cosine decay to `lr * min_ratio` over the budget."""

    lr: float
    warmup_steps: int
    min_ratio: float

    @classmethod
    def of(cls, config) -> WarmupCosine:
        return cls(config.lr, config.warmup_steps, config.min_lr_ratio)

    def __call__(self, step: int, fraction: float) -> float:
        warm = min(1.0, (step + 1) / max(1, self.warmup_steps))
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, fraction)))
        return self.lr * warm * (self.min_ratio + (1 - self.min_ratio) * cosine)


@dataclass(frozen=True)
class LinearDecay:
    """`lr` decayed linearly to 0 over the budget (each distillation round; Salimans & Ho 2022)."""

    lr: float

    def __call__(self, step: int, fraction: float) -> float:
        return self.lr * (1 - min(1.0, fraction))


__all__ = ["Budget", "Counters", "LinearDecay", "WarmupCosine"]

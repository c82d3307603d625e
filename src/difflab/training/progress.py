"""The progress bar (a log-line callback): step, loss, images/s and time left (tqdm on stderr)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from tqdm.auto import tqdm

from difflab.training.budget import Counters


class Progress:
    """A bar over the budget in per-mille, so steps, epochs and minutes budgets look the same."""

    def __init__(self, progress: Callable[[], float], counters: Counters, *, label: str = "training",
                 enabled: bool = True) -> None:
        self.progress, self.counters = progress, counters
        self.bar = tqdm(total=1000, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                        bar_format=label + " |{bar}| {percentage:3.0f}% [{elapsed}<{remaining}] {desc}")

    def __call__(self, loss: float, images_per_s: float) -> None:
        self.bar.n = min(1000, int(1000 * self.progress()))
        self.bar.set_description_str(f"step {self.counters.step} loss {loss:.4f} {images_per_s:.0f} img/s",
                                     refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        """Where the budget stands: 100% only when it is spent (a Ctrl-C at 30% shows 30%)."""
        self.bar.n = min(1000, int(1000 * self.progress()))
        self.bar.close()


__all__ = ["Progress"]

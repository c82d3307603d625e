"""The training bar (a log-line callback): step, loss, images/s and time left, through `difflab.progress`."""

from __future__ import annotations

from collections.abc import Callable

from difflab import progress as shown
from difflab.training.budget import Counters


class Progress:
    """A bar over the budget in per-mille, so steps, epochs and minutes budgets look the same."""

    def __init__(self, progress: Callable[[], float], counters: Counters, *, label: str = "training",
                 enabled: bool = True) -> None:
        self.progress, self.counters = progress, counters
        self.bar = shown.bar(1000, label, enabled=enabled, percent=True)

    def __call__(self, loss: float, images_per_s: float) -> None:
        self.bar.note(f"step {self.counters.step} loss {loss:.4f} {images_per_s:.0f} img/s")
        self.bar.set(self._per_mille())

    def _per_mille(self) -> int:
        return min(1000, int(1000 * self.progress()))

    def close(self) -> None:
        """Where the budget stands: 100% only when it is spent (a Ctrl-C at 30% shows 30%)."""
        self.bar.set(self._per_mille())
        self.bar.close()


__all__ = ["Progress"]

"""The training progress bar: step, loss, images/s and time left (tqdm on stderr)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


class Progress:
    """A bar over the budget in per-mille, so steps, epochs and minutes budgets look the same."""

    def __init__(self, config, *, enabled: bool = True) -> None:
        self.bar = tqdm(total=1000, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
                        bar_format="training |{bar}| {percentage:3.0f}% [{elapsed}<{remaining}] {desc}")

    def update(self, trainer, loss: float, images_per_s: float) -> None:
        self.bar.n = min(1000, int(1000 * trainer.progress()))
        self.bar.set_description_str(f"step {trainer.step} loss {loss:.4f} {images_per_s:.0f} img/s", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.n = self.bar.total
        self.bar.close()

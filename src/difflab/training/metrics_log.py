"""The metrics callback: at each log line one `metrics.jsonl` row (through `RunFolder`) and the same
scalars to the experiment trackers. Only rank 0 writes (its loss is already the mean over ranks)."""

from __future__ import annotations

from collections.abc import Callable

from difflab.run.folder import RunFolder
from difflab.training.budget import Counters
from difflab.training.tracking import Tracker


class MetricsLog:
    """`log(loss, images_per_s)`; `extra()` adds fields to each row (the epoch; a distillation round)."""

    def __init__(self, folder: RunFolder, counters: Counters, *, lr: Callable[[], float],
                 extra: Callable[[], dict] = dict, tracker: Callable[[], Tracker] | None = None,
                 step_offset: int = 0, enabled: bool = True) -> None:
        self.folder, self.counters, self.lr, self.extra, self.tracker = folder, counters, lr, extra, tracker
        self.step_offset, self.enabled = step_offset, enabled  # offset: rows numbered on over several loops

    def __call__(self, loss: float, images_per_s: float) -> None:
        if not self.enabled:
            return
        step = self.step_offset + self.counters.step
        row = {"step": step, "loss": round(float(loss), 6), "lr": self.lr(), "images_per_s": round(images_per_s, 1),
               "elapsed": round(self.counters.elapsed, 2), **self.extra()}
        self.folder.append_metrics(row)
        if self.tracker is not None:
            self.tracker().log_scalars(step, {k: v for k, v in row.items() if k != "step"})


__all__ = ["MetricsLog"]

"""The sample-grid callback: `num_sample_grids` class grids from the EMA model, evenly over the budget,
each to `samples/step_NNNNNN.png` and the trackers (a denoiser run has nothing to sample).

A grid has one row per class, so a dataset of 10,000 classes would sample 100,000 images for a picture:
`ShownClasses` bounds every grid (here and at the end of the run) to `GRID_CLASSES` evenly spaced classes."""

from __future__ import annotations

from collections.abc import Callable

import torch

from difflab.run.folder import RunFolder
from difflab.training.budget import Counters
from difflab.training.config import DENOISE, TrainConfig
from difflab.training.tracking import Tracker

GRID_CLASSES = 10  # rows of a grid: 10 samples each, 100 images at most


def shown_classes(num_classes: int, most: int = GRID_CLASSES) -> list[int]:
    """At most `most` class ids, evenly spaced over `range(num_classes)` (all of them when there are few)."""
    if num_classes <= most:
        return list(range(num_classes))
    return sorted({round(i * (num_classes - 1) / (most - 1)) for i in range(most)}) if most > 1 else [0]


class ShownClasses:
    """A run seen through a subset of its classes: `num_classes` is the subset's size and class id i samples
    the subset's i-th class; everything else is the run's. Lets the grid and trajectory pictures
    (report/samples.py draws one row per class) stay bounded whatever the dataset."""

    def __init__(self, run, classes: list[int]) -> None:
        self._run, self.classes = run, torch.tensor(classes, dtype=torch.long)

    @classmethod
    def of(cls, run, most: int = GRID_CLASSES):
        """`run` itself when it has few classes (or none), else a view of `most` of them."""
        return run if run.num_classes <= most else cls(run, shown_classes(run.num_classes, most))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def sample(self, labels=None, **kwargs) -> torch.Tensor:
        return self._run.sample(None if labels is None else self.classes[torch.as_tensor(labels)], **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._run, name)


class SampleGrids:
    def __init__(self, folder: RunFolder, config: TrainConfig, ema_model: torch.nn.Module, class_names,
                 class_prompts, *, progress: Callable[[], float], counters: Counters,
                 tracker: Callable[[], Tracker], enabled: bool = True) -> None:
        self.folder, self.config, self.ema_model = folder, config, ema_model
        self.class_names, self.class_prompts = class_names, class_prompts
        self.progress, self.counters, self.tracker = progress, counters, tracker
        self.total = config.num_sample_grids if enabled and config.objective != DENOISE else 0
        self.written = 0  # saved in the snapshot, so a resumed run writes the rest

    def __call__(self) -> None:
        if self.written < self.total and self.progress() >= (self.written + 1) / (self.total + 1):
            self.write()

    def write(self) -> None:
        from difflab.report.samples import write_class_grid
        from difflab.run import Run

        self.written += 1
        step = self.counters.step
        run = Run(self.folder.path, self.config, self.ema_model, self.class_names, self.class_prompts)
        path = write_class_grid(ShownClasses.of(run), self.folder.sub("samples", f"step_{step:06d}.png"))
        self.tracker().log_image("samples", step, path)


__all__ = ["GRID_CLASSES", "SampleGrids", "ShownClasses", "shown_classes"]

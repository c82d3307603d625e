"""The sample-grid callback: `num_sample_grids` class grids from the EMA model, evenly over the budget,
each to `samples/step_NNNNNN.png` and the trackers (a denoiser run has nothing to sample)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from difflab.run.folder import RunFolder
from difflab.training.budget import Counters
from difflab.training.config import DENOISE, TrainConfig
from difflab.training.tracking import Tracker


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
        path = write_class_grid(run, self.folder.sub("samples", f"step_{step:06d}.png"))
        self.tracker().log_image("samples", step, path)


__all__ = ["SampleGrids"]

"""Experiment trackers (TensorBoard, Weights & Biases, MLflow), all optional and imported only when asked.

The trainer talks to one `Tracker`: scalars per logged step, each sample grid as an image, the
config once. `open_tracker(config, run_dir)` returns a tracker for every `--tensorboard`/`--wandb`/
`--mlflow` flag set (a do-nothing one when none is), so the loop never checks flags itself.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np

from difflab.errors import UserError


def require(module: str, extra: str, flag: str):
    """Import an optional package, or tell the user the one command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"--{flag} needs the {extra} package; fix: pip install 'difflab[{extra}]'") from None


def read_png(path: Path) -> np.ndarray:
    """`(H, W, 3)` uint8 from a PNG written by the trainer (grey grids become RGB)."""
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


class Tracker:
    """The interface, and the do-nothing tracker used when no flag is set."""

    def log_config(self, config: dict) -> None: ...

    def log_scalars(self, step: int, values: dict[str, float]) -> None: ...

    def log_image(self, tag: str, step: int, path: Path) -> None: ...

    def close(self) -> None: ...


class TensorBoardTracker(Tracker):
    """Events under RUN/tb/ via torch's own SummaryWriter (`tensorboard --logdir RUN/tb`)."""

    def __init__(self, run_dir: Path):
        require("tensorboard", "tensorboard", "tensorboard")
        writer_module = require("torch.utils.tensorboard", "tensorboard", "tensorboard")
        self.writer = writer_module.SummaryWriter(log_dir=str(Path(run_dir) / "tb"))

    def log_config(self, config: dict) -> None:
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"train/{name}", value, step)

    def log_image(self, tag: str, step: int, path: Path) -> None:
        self.writer.add_image(tag, read_png(path), step, dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


class WandbTracker(Tracker):
    """A Weights & Biases run in RUN/wandb/ (online or offline as the user's wandb settings say)."""

    def __init__(self, run_dir: Path, config: dict):
        self.wandb = require("wandb", "wandb", "wandb")
        self.run = self.wandb.init(project="difflab", name=Path(run_dir).resolve().name, dir=str(run_dir), config=config)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log({f"train/{k}": v for k, v in values.items()}, step=step)

    def log_image(self, tag: str, step: int, path: Path) -> None:
        self.run.log({tag: self.wandb.Image(str(path))}, step=step)

    def close(self) -> None:
        self.run.finish()


class MlflowTracker(Tracker):
    """An MLflow run in the user's tracking store (default ./mlruns), named after the run folder."""

    def __init__(self, run_dir: Path, config: dict):
        self.mlflow = require("mlflow", "mlflow", "mlflow")
        self.mlflow.start_run(run_name=Path(run_dir).resolve().name)
        self.mlflow.log_params({k: str(v) for k, v in config.items()})

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        self.mlflow.log_metrics({f"train/{k}": float(v) for k, v in values.items()}, step=step)

    def log_image(self, tag: str, step: int, path: Path) -> None:
        self.mlflow.log_artifact(str(path), artifact_path=tag)

    def close(self) -> None:
        self.mlflow.end_run()


class MultiTracker(Tracker):
    """Forwards every call to each tracker the user asked for."""

    def __init__(self, trackers: list[Tracker]):
        self.trackers = trackers

    def log_config(self, config: dict) -> None:
        for t in self.trackers:
            t.log_config(config)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        for t in self.trackers:
            t.log_scalars(step, values)

    def log_image(self, tag: str, step: int, path: Path) -> None:
        for t in self.trackers:
            t.log_image(tag, step, path)

    def close(self) -> None:
        for t in self.trackers:
            t.close()


def open_tracker(config, run_dir: Path) -> Tracker:
    """The trackers `config.tensorboard/wandb/mlflow` ask for, started and given the config."""
    settings = config.to_dict()
    trackers: list[Tracker] = []
    if config.tensorboard:
        trackers.append(TensorBoardTracker(run_dir))
    if config.wandb:
        trackers.append(WandbTracker(run_dir, settings))
    if config.mlflow:
        trackers.append(MlflowTracker(run_dir, settings))
    tracker = MultiTracker(trackers) if trackers else Tracker()
    tracker.log_config(settings)
    return tracker


__all__ = ["Tracker", "open_tracker"]

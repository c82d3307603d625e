"""Experiment trackers (TensorBoard, Weights & Biases, MLflow), all optional and imported only when asked.

The trainer talks to one `Tracker`: scalars per logged step, each sample grid as an image, the
config once. `open_tracker(config, run_dir)` returns a tracker for every `--tensorboard`/`--wandb`/
`--mlflow` flag set (a do-nothing one when none is), so the loop never checks flags itself.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import time
import warnings
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


def outcome() -> str:
    """How the run being closed ended: "ok", "error", or "interrupted" (Ctrl-C).

    Read from the exception propagating through the trainer's `finally`, so trackers can mark a run that
    crashed as failed rather than finished without the trainer passing anything."""
    error = sys.exc_info()[1]
    if error is None:
        return "ok"
    return "interrupted" if isinstance(error, KeyboardInterrupt) else "error"


WANDB_EXIT_CODES = {"ok": 0, "error": 1, "interrupted": 130}  # 130: the shell's code for a Ctrl-C
MLFLOW_STATUS = {"ok": "FINISHED", "error": "FAILED", "interrupted": "KILLED"}


class WandbTracker(Tracker):
    """A Weights & Biases run in RUN/wandb/, online or offline as the user's wandb settings say (WANDB_MODE).

    The project is $WANDB_PROJECT, else "difflab"; the run is named after the run folder. wandb prints
    nothing (`silent`: its three "offline / saved in / view with" lines at start were the only output);
    failures still raise. An offline run is RUN/wandb/offline-run-*/ (`wandb sync` uploads it)."""

    def __init__(self, run_dir: Path, config: dict):
        self.wandb = require("wandb", "wandb", "wandb")
        self.run = self.wandb.init(project=os.environ.get("WANDB_PROJECT") or "difflab",
                                   name=Path(run_dir).resolve().name, dir=str(run_dir), config=config,
                                   settings=self.wandb.Settings(silent=True))

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log({f"train/{k}": v for k, v in values.items()}, step=step)

    def log_image(self, tag: str, step: int, path: Path) -> None:
        self.run.log({tag: self.wandb.Image(str(path))}, step=step)

    def close(self) -> None:
        self.run.finish(exit_code=WANDB_EXIT_CODES[outcome()])


class MlflowTracker(Tracker):
    """An MLflow run named after the run folder, in $MLFLOW_TRACKING_URI, else a file store in RUN/mlruns/.

    The default keeps every run self-contained (nothing lands in the current directory; browse it with
    `mlflow ui --backend-store-uri RUN/mlruns`). The experiment is $MLFLOW_EXPERIMENT_NAME, else "difflab".
    One client with an explicit run id, not mlflow's global active run, so a user's own runs are left alone."""

    def __init__(self, run_dir: Path, config: dict):
        mlflow = require("mlflow", "mlflow", "mlflow")
        user_uri = os.environ.get("MLFLOW_TRACKING_URI")
        uri = user_uri or (Path(run_dir).resolve() / "mlruns").as_uri()
        with warnings.catch_warnings(), contextlib.nullcontext() if user_uri else allow_file_store():
            warnings.simplefilter("ignore", FutureWarning)  # mlflow 3 deprecates the file store we default to
            self.client = mlflow.tracking.MlflowClient(tracking_uri=uri)
            name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "difflab"
            experiment = self.client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
            self.run_id = self.client.create_run(experiment_id, run_name=Path(run_dir).resolve().name).info.run_id
        self.params = [mlflow.entities.Param(k, str(v)) for k, v in config.items()]
        self.metric = mlflow.entities.Metric

    def log_config(self, config: dict) -> None:
        self.client.log_batch(self.run_id, params=self.params)

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        now = int(time.time() * 1000)  # mlflow timestamps are milliseconds
        metrics = [self.metric(f"train/{k}", float(v), now, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def log_image(self, tag: str, step: int, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=tag)

    def close(self) -> None:
        self.client.set_terminated(self.run_id, status=MLFLOW_STATUS[outcome()])


@contextlib.contextmanager
def allow_file_store():
    """Let mlflow 3 open our default file store while our client is built (recent 3.x refuse one unless opted in).

    A user who set MLFLOW_ALLOW_FILE_STORE keeps their value; the process's environment is left as it was.
    mlflow caches the store per URI, so the opt-in is not needed after this (the tests check it)."""
    if "MLFLOW_ALLOW_FILE_STORE" in os.environ:
        yield
        return
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)


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
        """Close every tracker even if one fails; the first failure is raised after the rest are closed."""
        with contextlib.ExitStack() as stack:
            for t in reversed(self.trackers):  # ExitStack runs callbacks last-in first-out: close in order
                stack.callback(t.close)


def open_tracker(config, run_dir: Path) -> Tracker:
    """The trackers `config.tensorboard/wandb/mlflow` ask for, started and given the config."""
    settings = config.to_dict()
    trackers: list[Tracker] = []
    wanted = [(config.tensorboard, lambda: TensorBoardTracker(run_dir)), (config.wandb, lambda: WandbTracker(run_dir, settings)),
              (config.mlflow, lambda: MlflowTracker(run_dir, settings))]
    try:
        for flag, start in wanted:
            if flag:
                trackers.append(start())
        tracker = MultiTracker(trackers) if trackers else Tracker()
        tracker.log_config(settings)
    except BaseException:
        MultiTracker(trackers).close()  # a later tracker failed (say, mlflow missing): end the runs already begun
        raise
    return tracker


__all__ = ["Tracker", "open_tracker"]

"""Experiment trackers (TensorBoard, Weights & Biases, MLflow), all optional and imported only when asked.

The trainer talks to one `Tracker`: scalars per logged step, each sample grid as an image, the
config once. `open_tracker(config, run_dir)` returns a tracker for every `--tensorboard`/`--wandb`/
`--mlflow` flag set (a do-nothing one when none is), so the loop never checks flags itself. The W&B and
MLflow run ids are saved in the run folder, so a `--resume` continues those runs: one training, one tracker run.
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
from difflab.run.folder import RunFolder


def require(module: str, extra: str, flag: str):
    """Import an optional package, or tell the user the one command that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"--{flag} needs the {extra} package; fix: pip install 'difflab[{extra}]'") from None


def warn(line: str) -> None:
    """One line on stderr: what went differently from what the user asked, and what difflab did instead."""
    print(f"difflab: {line}", file=sys.stderr, flush=True)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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

    def ids(self) -> dict[str, str]:
        """The tracker run ids to save for a resume, by tracker name (none for TensorBoard: its files are the run)."""
        return {}


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
    failures still raise. An offline run is RUN/wandb/offline-run-*/ (`wandb sync` uploads it).

    Given the `run_id` saved by an earlier session, the run continues under that id (offline, wandb ignores
    resume, so each session is its own offline-run-*-ID folder of the same id)."""

    def __init__(self, run_dir: Path, config: dict, run_id: str | None = None):
        self.wandb = require("wandb", "wandb", "wandb")
        self.run_dir, self.config = run_dir, config
        self.run = self.reopen(run_id) if run_id else None
        if self.run is None:
            self.run = self.start()

    def start(self, **resume):
        return self.wandb.init(project=os.environ.get("WANDB_PROJECT") or "difflab",
                               name=Path(self.run_dir).resolve().name, dir=str(self.run_dir), config=self.config,
                               settings=self.wandb.Settings(silent=True), **resume)

    def reopen(self, run_id: str):
        """The saved run ("allow": wandb creates it under that id where the server lacks it, as offline); None,
        after one warning line, when wandb refuses the id (a run deleted on the server, say)."""
        try:
            return self.start(id=run_id, resume="allow")
        except Exception as err:  # wandb.init re-raises whatever failed; a second failure in start() is raised
            warn(f"cannot continue the W&B run {run_id} ({first_line(err)}); started a new W&B run")
            return None

    def ids(self) -> dict[str, str]:
        return {"wandb": self.run.id}

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
    One client with an explicit run id, not mlflow's global active run, so a user's own runs are left alone.
    Given the `run_id` saved by an earlier session, that run continues (RUNNING again)."""

    def __init__(self, run_dir: Path, config: dict, run_id: str | None = None):
        self.mlflow = mlflow = require("mlflow", "mlflow", "mlflow")
        user_uri = os.environ.get("MLFLOW_TRACKING_URI")
        uri = user_uri or (Path(run_dir).resolve() / "mlruns").as_uri()
        with warnings.catch_warnings(), contextlib.nullcontext() if user_uri else allow_file_store():
            warnings.simplefilter("ignore", FutureWarning)  # mlflow 3 deprecates the file store we default to
            self.client = mlflow.tracking.MlflowClient(tracking_uri=uri)
            run = (self.reopen(run_id) if run_id else None) or self.start(Path(run_dir).resolve().name)
        self.run_id = run.info.run_id
        # mlflow refuses to change a logged param, and a resume may change the budget: those keep their first value
        self.params = [mlflow.entities.Param(k, str(v)) for k, v in config.items() if k not in run.data.params]
        self.metric = mlflow.entities.Metric

    def start(self, run_name: str):
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "difflab"
        experiment = self.client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else self.client.create_experiment(name)
        return self.client.create_run(experiment_id, run_name=run_name)

    def reopen(self, run_id: str):
        """The saved run, RUNNING again (as `mlflow.start_run(run_id=...)` does it); None, after one warning line,
        when this store does not hold it (the store moved, another MLFLOW_TRACKING_URI, a deleted run)."""
        try:
            run = self.client.get_run(run_id)
            if run.info.lifecycle_stage != self.mlflow.entities.LifecycleStage.ACTIVE:
                raise self.mlflow.exceptions.MlflowException(f"run {run_id} was deleted")
            self.client.update_run(run_id, status="RUNNING")
            return run
        except Exception as err:  # a file store whose folder is gone raises a bare Exception; start() raises again
            warn(f"cannot continue the MLflow run {run_id} ({first_line(err)}); started a new MLflow run")
            return None

    def ids(self) -> dict[str, str]:
        return {"mlflow": self.run_id}

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

    def ids(self) -> dict[str, str]:
        return {name: run_id for t in self.trackers for name, run_id in t.ids().items()}


def open_tracker(config, run_dir: Path) -> Tracker:
    """The trackers `config.tensorboard/wandb/mlflow` ask for, started and given the config.

    A W&B or MLflow run whose id the run folder saved is continued: that is a resume, since a new run's folder
    holds no ids (`RunFolder.create` clears them). The ids of runs started here are saved for the next one."""
    folder, settings = RunFolder(run_dir), config.to_dict()
    saved = folder.read_trackers() if config.wandb or config.mlflow else {}  # a damaged file matters only to them
    trackers: list[Tracker] = []
    wanted = [(config.tensorboard, lambda: TensorBoardTracker(run_dir)),
              (config.wandb, lambda: WandbTracker(run_dir, settings, saved.get("wandb"))),
              (config.mlflow, lambda: MlflowTracker(run_dir, settings, saved.get("mlflow")))]
    try:
        for flag, start in wanted:
            if flag:
                trackers.append(start())
        tracker = MultiTracker(trackers) if trackers else Tracker()
        save_ids(folder, saved, tracker.ids())
        tracker.log_config(settings)
    except BaseException:
        MultiTracker(trackers).close()  # a later tracker failed (say, mlflow missing): end the runs already begun
        raise
    return tracker


def save_ids(folder: RunFolder, saved: dict[str, str], started: dict[str, str]) -> None:
    """Save the ids of this session's runs beside those of trackers not used this time (a later resume may be)."""
    ids = {**saved, **started}
    if ids == saved:
        return
    try:
        folder.write_trackers(ids)
    except OSError as err:  # training can go on: only a later resume loses the link to these runs
        warn(f"cannot save the tracker run ids in {folder.path} ({err.strerror or err}); a --resume will start new "
             "tracker runs; fix: free space or permissions")


__all__ = ["Tracker", "open_tracker"]

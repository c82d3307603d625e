"""`RunFolder`: the one owner of a run folder's layout — every path, every write, every read.

    RUN/config.json          TrainConfig (every training option)
    RUN/model.json           ModelSpec (the network), class names, image shape, text prompts
    RUN/model.safetensors    raw weights;  RUN/ema.safetensors  EMA weights (sampled from by default)
    RUN/state/               one resumable snapshot: weights, EMA, optimizer, RNG, trainer.json
    RUN/metrics.jsonl        one JSON line per log step
    RUN/samples/ plots/ eval/ explain/ edit/   pictures and results;   RUN/report.html
    RUN/guide.safetensors    the autoguidance guide;  RUN/filter.safetensors + filter.json  the sample filter
    RUN/distill.json         a distilled run's provenance
    RUN/trackers.json        the W&B / MLflow run ids, so a resume continues those runs

Nothing else in difflab spells these names. Writes are atomic (`difflab.run.files`); `state/` is
replaced by directory rename, so a crash at any moment leaves the old or the new snapshot, never a
mix, and leftovers of an interrupted write are cleaned on the next read. Reads and writes stay inside
the folder (a link out of it is refused, never followed), open only regular files of bounded size, and
foreign content in a JSON file is a one-line `UserError`. One writer at a time: `lock()` (`run/lock.py`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from difflab.errors import UserError
from difflab.run import files
from difflab.run.files import TEMP_SUFFIX
from difflab.run.lock import RunLock

if TYPE_CHECKING:
    from difflab.nn.spec import ModelSpec
    from difflab.training.config import TrainConfig

CONFIG, MODEL_META, METRICS, REPORT, DISTILL = "config.json", "model.json", "metrics.jsonl", "report.html", "distill.json"
TRACKERS, FILTER = "trackers.json", "filter.json"
WEIGHTS = ("model", "ema", "guide", "filter")  # <name>.safetensors at the top: what users and samplers load (guide:
# autoguidance; filter: the classifier that sends unrecognisable samples back, sampling/filter.py)
STATE_DIR, STATE_INFO = "state", "trainer.json"
STATE_FILES = ("ema", "model", "optimizer")  # required in state/; rng.safetensors is checked by the trainer
SUBFOLDERS = ("samples", "plots", "eval", "explain", "edit")
COUNTERS = ("step", "position", "seen", "ema_updates", "grids_written", "skipped_steps")  # trainer.json: whole, >= 0
METRIC_NUMBERS = ("loss", "lr", "images_per_s", "elapsed", "epoch")  # metrics.jsonl keys readers do arithmetic on
MAX_COUNT = 2**62  # no real counter comes near; bigger is damage (and overflows numpy in the plots)
_DAMAGED_STATE = "the snapshot is damaged; fix: start a new run, or restore the folder from a copy"


class RunFolder:
    """The files of one run folder; cheap to make, holds no open handles (the lock it hands out does)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # --- paths ---------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def meta_path(self) -> Path:
        return self.path / MODEL_META

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def state_dir(self) -> Path:
        return self.path / STATE_DIR

    @property
    def report_path(self) -> Path:
        return self.path / REPORT

    def weights_path(self, name: str = "ema") -> Path:
        if name not in WEIGHTS:
            raise UserError(f"unknown weights {name!r}; use one of {', '.join(WEIGHTS)}")
        return self.path / f"{name}.safetensors"

    def sub(self, folder: str, *parts: str, create: bool = False) -> Path:
        """`RUN/<folder>/<parts...>` (samples, plots, eval, explain, edit); `create` makes the parent folder."""
        if folder not in SUBFOLDERS:
            raise ValueError(f"unknown run sub-folder {folder!r}; one of {', '.join(SUBFOLDERS)}")
        path = self.path.joinpath(folder, *parts)
        files.inside(path if not parts else path.parent, self.path)  # a linked sub-folder must not lead out
        if create:
            (path if not parts else path.parent).mkdir(parents=True, exist_ok=True)
        return path

    def read_bytes(self, path: Path, *, limit: int = 256 * 2**20) -> bytes:
        """A file of this run (a picture for the report, say): regular, inside the folder, at most `limit` bytes."""
        try:
            return files.read_bytes(path, root=self.path, limit=limit)
        except FileNotFoundError:
            raise UserError(f"{path} not found; fix: point at a difflab run folder") from None

    def _writable(self, path: Path) -> Path:
        """`path`, once its folder is known to lie inside the run folder (the file itself is replaced atomically,
        so a link there is replaced, never written through)."""
        files.inside(path.parent, self.path)
        return path

    def lock(self) -> RunLock:
        """The writer's lock: `with folder.lock():` or `.acquire()`; refused, with who holds it, while another
        process trains into this folder."""
        return RunLock(self.path)

    def is_run(self) -> bool:
        """Something named config.json is there (whether it is a usable file is `read_config`'s question)."""
        return os.path.lexists(self.config_path)

    def require_run(self) -> RunFolder:
        if not self.path.is_dir():
            raise UserError(f"run folder {self.path} not found; fix: give the folder that `difflab train` printed")
        try:
            if self.is_run():
                files.checked_file(self.config_path, root=self.path)  # a FIFO, a device, a link out: refused, unread
                return self
        except FileNotFoundError:  # a dangling link
            pass
        raise UserError(f"{self.path} is not a run folder (no {CONFIG}); fix: give the folder `difflab train` wrote")

    # --- creation, config and the model's description ------------------------------------------
    def create(self, config: TrainConfig, meta: dict) -> None:
        """A new run: folders, config.json, model.json and an empty metrics.jsonl; no tracker ids, so the new
        run's trackers start new runs (a restart from step 0 must not continue an abandoned attempt's)."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / TRACKERS).unlink(missing_ok=True)  # a link there is removed, never followed
        for sub in ("samples", "plots"):
            (self.path / sub).mkdir(exist_ok=True)
        self.write_config(config)
        self.write_metrics([])
        self.write_meta(meta)

    def read_config(self) -> TrainConfig:
        from difflab.training.config import TrainConfig

        self.require_run()
        try:
            config = TrainConfig.load(self.config_path, saved_run=True)
        except UserError:
            raise
        except (TypeError, ValueError, RecursionError, AttributeError) as err:  # a value of a foreign type
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserError(f"{self.config_path} holds a value difflab cannot use ({first}); fix: an intact run folder, "
                            "or correct that key") from None
        return self._with_folder_size(config)

    def _with_folder_size(self, config: TrainConfig) -> TrainConfig:
        """A folder run saved without `image_size` reloads its data at the size it trained at (model.json), not
        at today's default for that folder: runs trained before folders defaulted to at most 64 px keep theirs."""
        side = self._trained_side(config.dataset, config.image_size)
        return config.replace(image_size=side) if side else config

    def _trained_side(self, dataset, image_size) -> int | None:
        """The side a folder run saved without `image_size` trains at, from model.json; None for any other run
        (a size saved, not a folder, or no model.json yet)."""
        if image_size is not None or not str(dataset).startswith("folder:") or not self.meta_path.is_file():
            return None
        shape = self.read_meta().get("image_shape")
        return int(shape[-1]) if shape else None

    def write_config(self, config: TrainConfig) -> None:
        files.write_json(self._writable(self.config_path), config.to_dict())

    def check_config(self, new: TrainConfig, saved: TrainConfig | dict | None = None, *,
                     may_change: frozenset[str] | None = None) -> None:
        """The one "does this config match this run" check. By default only the budget, bookkeeping and
        sampling defaults may change (continuing a run); `may_change` narrows that (a sweep: only the device).
        `saved` is what to compare with: the snapshot's config, else config.json."""
        from difflab.training.config import RESUMABLE_CHANGES, config_diff

        where = self.state_dir if saved is not None else self.path
        saved = self.read_config() if saved is None else saved
        old = saved if isinstance(saved, dict) else saved.to_dict()
        side = self._trained_side(old.get("dataset"), old.get("image_size"))
        if side:
            old = {**old, "image_size": side}  # as `read_config` fills it: not a change
        diff = config_diff(old, new.to_dict(), RESUMABLE_CHANGES if may_change is None else may_change)
        if diff:
            keys = ", ".join(d.split(":")[0] for d in diff)
            raise UserError(f"{where} was trained with different {keys} (saved with another configuration: "
                            f"{'; '.join(diff)}); fix: continue with the run's own config.json, or a new --out")

    def read_meta(self) -> dict:
        """model.json, its keys checked for type: class names, image shape, text prompts (the model in `read_spec`)."""
        meta = files.read_json(self.meta_path, root=self.path)
        checks = {"class_names": lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
                  "image_shape": lambda v: isinstance(v, list) and len(v) == 3 and all(_is_count(n) for n in v),
                  "class_prompts": lambda v: v is None or (isinstance(v, list) and all(
                      isinstance(p, list) and p and all(isinstance(t, str) for t in p) for p in v))}
        for key, fits in checks.items():
            if key in meta and not fits(meta[key]):
                raise UserError(f"{self.meta_path}: {key} is not what difflab wrote ({_short(meta[key])}); "
                                "fix: an intact run folder")
        return meta

    def write_meta(self, meta: dict) -> None:
        files.write_json(self._writable(self.meta_path), meta)

    def read_spec(self, config: TrainConfig | None = None) -> ModelSpec:
        """The network's `ModelSpec` from model.json (its prediction type from the config when model.json,
        written before specs had one, lacks it)."""
        from difflab.nn.spec import ModelSpec

        meta = self.read_meta()
        prediction = (config or self.read_config()).objective
        return ModelSpec.from_dict(meta.get("model"), source=str(self.meta_path), prediction=prediction)

    # --- weights -------------------------------------------------------------------------------
    def save_weights(self, name: str, state: dict[str, torch.Tensor]) -> None:
        """Atomically; non-finite weights are refused and the file keeps its last finite ones."""
        files.save_tensors(self._writable(self.weights_path(name)), state)

    def load_weights(self, name: str = "ema", *, expect: dict[str, torch.Tensor] | None = None
                     ) -> dict[str, torch.Tensor]:
        """`<name>.safetensors`, finite and — given the model's state dict as `expect` — of its names, shapes and
        dtypes, checked before anyone uses it."""
        return files.load_tensors(self.weights_path(name), root=self.path, expect=expect)

    def has_weights(self, name: str) -> bool:
        return self.weights_path(name).is_file()

    # --- metrics -------------------------------------------------------------------------------
    def read_metrics(self) -> list[dict]:
        """The one metrics.jsonl reader: rows in order; a line torn by a crash (or still being written) skipped,
        and so is a foreign one (a step that is not a count, a loss that is not a number)."""
        return [r for r in files.read_jsonl(self.metrics_path, root=self.path) if _is_row(r)]

    def write_metrics(self, rows: list[dict]) -> None:
        files.atomic_write_text(self._writable(self.metrics_path), "".join(json.dumps(r) + "\n" for r in rows))

    def append_metrics(self, row: dict) -> None:
        files.append_line(self._writable(self.metrics_path), json.dumps(row) + "\n")

    def trim_metrics(self, step: int) -> None:
        """Drop metric lines written after the snapshot at `step` (and torn lines), so a resumed trace has
        no duplicates."""
        if self.metrics_path.exists():
            self.write_metrics([r for r in self.read_metrics() if _is_number(r.get("step")) and r["step"] <= step])

    # --- results beside the run: evaluations, provenance ---------------------------------------
    def write_eval(self, name: str, result: dict) -> Path:
        path = self.sub("eval", f"{name}.json", create=True)
        files.write_json(self._writable(path), result)
        return path

    def read_eval(self, name: str) -> dict | None:
        path = self.sub("eval", f"{name}.json")
        return files.read_json(path, root=self.path) if path.is_file() or path.is_symlink() else None

    def read_evals(self) -> dict[str, dict]:
        """Every `eval/*.json`, by name; a damaged one is skipped (a report must still render)."""
        out = {}
        for path in sorted(self.sub("eval").glob("*.json")):
            try:
                out[path.stem] = files.read_json(path, root=self.path)
            except UserError:
                continue
        return out

    def read_distill(self) -> dict | None:
        path = self.path / DISTILL
        if not (path.is_file() or path.is_symlink()):
            return None
        info = files.read_json(path, root=self.path)
        if "student_steps" in info and not (_is_count(info["student_steps"]) and info["student_steps"] >= 1):
            raise UserError(f"{path}: student_steps is not a step count ({_short(info['student_steps'])}); "
                            "fix: an intact run folder")
        return info

    def write_distill(self, info: dict) -> None:
        files.write_json(self._writable(self.path / DISTILL), info)

    def read_filter(self) -> dict | None:
        """filter.json (the sample filter's network arguments, threshold and held-out accuracy), or None."""
        path = self.path / FILTER
        if not (path.is_file() or path.is_symlink()):
            return None
        info = files.read_json(path, root=self.path)
        if not (_is_number(info.get("threshold")) and 0 <= info["threshold"] <= 1 and isinstance(info.get("model"), dict)):
            raise UserError(f"{path}: no threshold in [0, 1] or network arguments; fix: delete filter.json and "
                            "filter.safetensors, then `difflab train --resume RUN` trains the filter again")
        return info

    def write_filter(self, state: dict[str, torch.Tensor], info: dict) -> None:
        """The weights first: a crash between the two leaves no filter.json, so no filter, never half of one."""
        self.save_weights("filter", state)
        files.write_json(self._writable(self.path / FILTER), info)

    # --- tracker runs -------------------------------------------------------------------------
    def read_trackers(self) -> dict[str, str]:
        """The saved tracker run ids by tracker ("wandb", "mlflow"); none for a run that never had one."""
        path = self.path / TRACKERS
        if not (path.is_file() or path.is_symlink()):
            return {}
        ids = files.read_json(path, root=self.path)
        if not isinstance(ids, dict):
            raise UserError(f"{path} is not what difflab wrote ({_short(ids)}); fix: delete {path}, and the resumed "
                            "run starts new tracker runs")
        for name, run_id in ids.items():
            if not (isinstance(run_id, str) and 0 < len(run_id) <= 256):
                raise UserError(f"{path}: {name} is not a run id ({_short(run_id)}); fix: delete {path}, and the "
                                "resumed run starts new tracker runs")
        return ids

    def write_trackers(self, ids: dict[str, str]) -> None:
        files.write_json(self._writable(self.path / TRACKERS), ids)

    # --- the resumable snapshot ----------------------------------------------------------------
    def has_state(self) -> bool:
        return (self.state_dir / STATE_INFO).is_file()

    def never_checkpointed(self) -> bool:
        """A run stopped before its first checkpoint: a config, but no snapshot and no weights, so starting it
        again from step 0 loses nothing. (Call after `recover_state`.)"""
        return self.is_run() and not any(os.path.lexists(p) for p in (
            self.state_dir, self.path / ".state.old", self.weights_path("model"), self.weights_path("ema")))

    def write_state(self, tensors: dict[str, dict[str, torch.Tensor]], info: dict) -> None:
        """Atomically replace `state/` with files `<name>.safetensors` and `trainer.json`."""
        self.recover_state()
        tmp = Path(tempfile.mkdtemp(dir=self.path, prefix=".state.", suffix=TEMP_SUFFIX))
        try:
            for name, group in tensors.items():
                files.save_tensors(tmp / f"{name}.safetensors", group)
            files.atomic_write_text(tmp / STATE_INFO, json.dumps(info, indent=1))
            final, old = self.state_dir, self.path / ".state.old"
            if final.exists():
                os.rename(final, old)
            os.rename(tmp, final)  # the commit point: before it the old snapshot rules, after it the new one
            files.fsync_dir(self.path)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            self.recover_state()  # a failed rename must not leave the old snapshot under .state.old
            raise

    def recover_state(self) -> None:
        """Finish or undo an interrupted `write_state`, and delete temp leftovers (they are never read)."""
        state, old = self.state_dir, self.path / ".state.old"
        if old.is_dir() and not state.is_dir():
            os.rename(old, state)  # killed between the two renames: the old snapshot is the newest complete one
        shutil.rmtree(old, ignore_errors=True)
        for folder in (self.path, state) if not state.is_symlink() else (self.path,):  # never clean outside the run
            for leftover in folder.glob(f".*{TEMP_SUFFIX}"):
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)

    def read_state_info(self) -> dict:
        """The snapshot's counters and bookkeeping (`state/trainer.json`: step, seen, elapsed, ...), no tensors;
        each checked for type and range, so a damaged one is refused here, not used."""
        path = self.state_dir / STATE_INFO
        info = files.read_json(path, root=self.path)
        bad = next((k for k in COUNTERS if k in info and not _is_count(info[k])), None)
        if bad is None and "elapsed" in info and not (_is_number(info["elapsed"]) and 0 <= info["elapsed"] < math.inf):
            bad = "elapsed"
        if bad is None:
            bad = next((k for k in ("optimizer", "rng", "config") if k in info and not isinstance(info[k], dict)), None)
        if bad is not None:
            raise UserError(f"{path}: {bad} is not what difflab wrote ({_short(info[bad])}); {_DAMAGED_STATE}")
        if "step" not in info:
            raise UserError(f"{path} has no step; {_DAMAGED_STATE}")
        return info

    def read_state(self, *, recover: bool = True) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
        """The newest complete snapshot; cleans temp leftovers of an interrupted write (unless `recover=False`:
        a reader that is not the writer, e.g. a rank other than 0, must not delete the writer's temp files)."""
        if recover:
            self.recover_state()
        state = self.state_dir
        if not self.has_state():
            raise UserError(f"{self.path} has no resumable state ({STATE_DIR}/{STATE_INFO}); fix: start a new run")
        info = self.read_state_info()
        missing = [f"{name}.safetensors" for name in STATE_FILES if not (state / f"{name}.safetensors").is_file()]
        if missing:
            raise UserError(f"{state} is incomplete (missing {', '.join(missing)}); fix: start a new run")
        tensors = {p.stem: files.load_tensors(p, root=self.path) for p in sorted(state.glob("*.safetensors"))}
        return tensors, info


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT


def _is_row(row: dict) -> bool:
    """A metrics row as difflab writes it: a step count and numbers where readers compute."""
    return _is_count(row.get("step")) and all(_is_number(row[k]) for k in METRIC_NUMBERS if k in row)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["RunFolder"]

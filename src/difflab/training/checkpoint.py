"""Checkpoints: safetensors for tensors, JSON for everything else, never pickle; atomic writes.

A run folder keeps the user-facing weights at the top (`model.safetensors`, `ema.safetensors`) and
one self-consistent resumable snapshot in `state/` (weights, EMA, optimizer, RNG, counters).
`state/` is replaced by directory rename, so a crash at any moment leaves either the old or the
new snapshot, never a mix; leftovers of an interrupted write are removed on the next load.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from difflab.errors import UserError
from difflab.training import faults

STATE_DIR = "state"
STATE_FILES = ("ema", "model", "optimizer")  # required in state/; rng.safetensors is checked by the trainer
TEMP_SUFFIX = ".tmp"  # every temp file or folder ends so and starts with "."; never read as a checkpoint
_UMASK = os.umask(0o022)  # read once (os.umask can only be read by setting it), then restored
os.umask(_UMASK)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it."""
    path = Path(path)
    faults.check_writer(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data[: len(data) // 2])
            faults.maybe_pause()  # test hook: widen the window in which a kill leaves a partial temp file
            f.write(data[len(data) // 2 :])
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """safetensors file written atomically; tensors made contiguous CPU copies first."""
    from safetensors.torch import save

    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write_bytes(Path(path), save(cpu, metadata=metadata))


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing or corrupt file is a one-line `UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found; fix: point at a difflab run folder (it holds model.safetensors)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{path} is not a valid safetensors file ({err}); fix: use an intact run folder") from None


def read_json(path: Path) -> dict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} not found; fix: point at a difflab run folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err}); the run folder is damaged") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object")
    return data


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state dict into tensors (for safetensors) and JSON-able rest."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in list(tensors.items()) + list(meta["scalars"].items()):
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def keep_fused(optimizer: torch.optim.Optimizer) -> None:
    """After `load_optimizer`: the saved param groups carry their own fused/foreach flags; keep fused (the
    deferred non-finite check needs it) and its step counts on the parameters' device, as fused wants."""
    for group in optimizer.param_groups:
        group.update(fused=True, foreach=None)
    for param, state in optimizer.state.items():
        if torch.is_tensor(state.get("step")):
            state["step"] = state["step"].to(param.device, torch.float32)


def write_state(run_dir: Path, tensors: dict[str, dict[str, torch.Tensor]], info: dict) -> None:
    """Atomically replace `run_dir/state/` with files `<name>.safetensors` and `trainer.json`."""
    run_dir = Path(run_dir)
    recover_state(run_dir)
    tmp = Path(tempfile.mkdtemp(dir=run_dir, prefix=".state.", suffix=TEMP_SUFFIX))
    try:
        for name, group in tensors.items():
            save_tensors(tmp / f"{name}.safetensors", group)
        atomic_write_text(tmp / "trainer.json", json.dumps(info, indent=1))
        final, old = run_dir / STATE_DIR, run_dir / ".state.old"
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)  # the commit point: before it the old snapshot rules, after it the new one
        _fsync_dir(run_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        recover_state(run_dir)  # a failed rename must not leave the old snapshot under .state.old
        raise


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable (a power cut after this keeps the new snapshot)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover_state(run_dir: Path) -> None:
    """Finish or undo an interrupted `write_state`, and delete temp leftovers (they are never read)."""
    run_dir = Path(run_dir)
    state, old = run_dir / STATE_DIR, run_dir / ".state.old"
    if old.is_dir() and not state.is_dir():
        os.rename(old, state)  # killed between the two renames: the old snapshot is the newest complete one
    shutil.rmtree(old, ignore_errors=True)
    for folder in (run_dir, state):
        for leftover in folder.glob(f".*{TEMP_SUFFIX}"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def read_state(run_dir: Path, *, recover: bool = True) -> tuple[dict[str, dict[str, torch.Tensor]], dict]:
    """The newest complete snapshot; cleans temp leftovers of an interrupted write (unless `recover=False`:
    a reader that is not the writer, e.g. a rank other than 0, must not delete the writer's temp files)."""
    run_dir = Path(run_dir)
    if recover:
        recover_state(run_dir)
    state = run_dir / STATE_DIR
    if not (state / "trainer.json").is_file():
        raise UserError(f"{run_dir} has no resumable state (state/trainer.json); fix: start a new run")
    info = read_json(state / "trainer.json")
    missing = [f"{name}.safetensors" for name in STATE_FILES if not (state / f"{name}.safetensors").is_file()]
    if missing:
        raise UserError(f"{state} is incomplete (missing {', '.join(missing)}); fix: start a new run")
    tensors = {p.stem: load_tensors(p) for p in sorted(state.glob("*.safetensors"))}
    return tensors, info


__all__ = [
    "atomic_write_bytes", "atomic_write_text", "load_optimizer", "load_tensors", "optimizer_tensors",
    "read_json", "read_state", "recover_state", "save_tensors", "write_state",
]

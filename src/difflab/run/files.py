"""Safe file I/O for everything difflab writes or reads: atomic writes, validated safetensors and JSON.

Why one place: a crash at any moment must leave either the old file or the new one, never a torn
mix, and a damaged or foreign file must be a one-line `UserError`, never a traceback. Tensors are
safetensors and everything else JSON, so reading never unpickles.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from difflab.errors import UserError

TEMP_SUFFIX = ".tmp"  # every temp file or folder ends so and starts with "."; never read as a result
_UMASK = os.umask(0o022)  # read once (os.umask can only be read by setting it), then restored
os.umask(_UMASK)


def _test_hooks(path: Path) -> float:
    """Test seams, read from the environment (a subprocess test cannot monkeypatch):
    `DIFFLAB_TEST_RANK0_WRITES=1` makes a write from a rank other than 0 fail loudly;
    `DIFFLAB_TEST_SLOW_WRITES=SECONDS` pauses halfway through each write, so a kill lands inside it."""
    rank = os.environ.get("RANK", "0")
    if os.environ.get("DIFFLAB_TEST_RANK0_WRITES") and rank != "0":
        raise RuntimeError(f"rank {rank} wrote {path}; only rank 0 may write")
    text = os.environ.get("DIFFLAB_TEST_SLOW_WRITES", "")
    try:
        return float(text) if text else 0.0
    except ValueError:
        raise UserError(f"DIFFLAB_TEST_SLOW_WRITES={text!r} is not a number of seconds") from None


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it."""
    path = Path(path)
    pause = _test_hooks(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data[: len(data) // 2])
            if pause:
                time.sleep(pause)  # test hook: widen the window in which a kill leaves a partial temp file
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


def write_json(path: Path, data: dict | list) -> None:
    """Indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


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
    """A JSON object from `path`; missing, damaged or not an object is a one-line `UserError`."""
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


def read_jsonl(path: Path) -> list[dict]:
    """The JSON-object lines of `path` (none if it is missing), skipping a line cut short by a crash or
    still being written: a reader may look while a run appends."""
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def fsync_dir(folder: Path) -> None:
    """Make renames inside `folder` durable (a power cut after this keeps them)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["TEMP_SUFFIX", "atomic_write_bytes", "atomic_write_text", "fsync_dir", "load_tensors", "read_json",
           "read_jsonl", "save_tensors", "write_json"]

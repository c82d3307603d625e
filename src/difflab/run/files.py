"""Safe file I/O for everything difflab writes or reads: atomic writes, validated safetensors and JSON.

Why one place: a crash at any moment must leave either the old file or the new one, never a torn
mix, and a damaged or foreign file must be a one-line `UserError`, never a traceback. Tensors are
safetensors and everything else JSON, so reading never unpickles. Reads open only regular files
(a FIFO or /dev/zero would hang or fill memory), up to a size limit, and — given the run folder as
`root` — never through a link that leads out of it. Tensors are checked (finite; with `expect`, also
names, shapes and dtypes) before anyone uses them, and non-finite weights are never written.
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from difflab.errors import UserError

TEMP_SUFFIX = ".tmp"  # every temp file or folder ends so and starts with "."; never read as a result
_UMASK = os.umask(0o022)  # read once (os.umask can only be read by setting it), then restored
os.umask(_UMASK)
JSON_LIMIT = 64 * 2**20  # config, model.json, trainer.json, evaluations: real ones are kilobytes
JSONL_LIMIT = 2**30  # metrics.jsonl: some five million log lines
TENSOR_LIMIT = 64 * 2**30  # safetensors are memory-mapped, not read whole; far above any difflab network
_DAMAGED = "fix: use an intact run folder"


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


# --- reading: regular files only, inside the run folder, bounded --------------------------------
def inside(path: Path, root: Path | None) -> Path:
    """`path` with every link resolved; with `root`, refused when that leads out of `root`."""
    path = Path(path)
    try:
        real = path.resolve()
        if root is None or real.is_relative_to(Path(root).resolve()):
            return real
    except (OSError, RuntimeError):  # a link loop
        raise UserError(f"{path} is a link that leads nowhere (a loop); fix: replace it with a regular file") from None
    raise UserError(f"{path} is a link out of the run folder (to {real}); fix: replace it with the file itself")


def checked_file(path: Path, *, root: Path | None = None, limit: int = JSON_LIMIT) -> Path:
    """The real path of `path` once it is known to be a regular file of at most `limit` bytes (inside
    `root` when given). A missing file raises FileNotFoundError, for the caller to word."""
    real = inside(path, root)
    try:
        info = os.stat(real)
    except FileNotFoundError:
        raise
    except OSError as err:  # permissions, a name too long
        raise UserError(f"cannot read {path} ({err.strerror}); fix: check the folder's permissions") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{path} is not a regular file ({_kind(info.st_mode)}); fix: replace it with the file difflab wrote")
    if info.st_size > limit:
        raise UserError(f"{path} is {info.st_size:,} bytes, more than the {limit:,} difflab reads; {_DAMAGED}")
    return real


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")


def read_bytes(path: Path, *, root: Path | None = None, limit: int = JSON_LIMIT) -> bytes:
    """The bytes of a regular file (see `checked_file`); opened without blocking or following a last link."""
    real = checked_file(path, root=root, limit=limit)
    fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for something else since the check
            raise UserError(f"{path} is not a regular file; fix: replace it with the file difflab wrote")
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise UserError(f"{path} is more than the {limit:,} bytes difflab reads; {_DAMAGED}")
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_json(path: Path, data: bytes):
    """Any JSON value from `data`; undecodable, invalid, too deep or too long a number is a one-line `UserError`."""
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as err:  # JSONDecodeError, UnicodeDecodeError, a 5,000-digit number
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path} is not valid JSON ({first}); the run folder is damaged; {_DAMAGED}") from None


def read_json(path: Path, *, root: Path | None = None) -> dict:
    """A JSON object from `path`; missing, damaged or not an object is a one-line `UserError`."""
    path = Path(path)
    try:
        data = parse_json(path, read_bytes(path, root=root))
    except FileNotFoundError:
        raise UserError(f"{path} not found; fix: point at a difflab run folder") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object, not {type(data).__name__}; {_DAMAGED}")
    return data


def read_jsonl(path: Path, *, root: Path | None = None) -> list[dict]:
    """The JSON-object lines of `path` (none if it is missing), skipping a line cut short by a crash or
    still being written: a reader may look while a run appends."""
    try:
        lines = read_bytes(path, root=root, limit=JSONL_LIMIT).decode("utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


# --- tensors: checked before use, never written non-finite -------------------------------------
def load_tensors(path: Path, *, root: Path | None = None, expect: dict[str, torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a missing, corrupt or non-finite file — or with `expect` (a state dict),
    one whose names, shapes or dtypes differ from it — is a one-line `UserError`."""
    path = Path(path)
    try:
        real = checked_file(path, root=root, limit=TENSOR_LIMIT)
    except FileNotFoundError:
        raise UserError(f"{path} not found; fix: point at a difflab run folder (it holds model.safetensors)") from None
    try:
        tensors = load_file(str(real))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise UserError(f"{path} is not a valid safetensors file ({err}); {_DAMAGED}") from None
    if expect is not None:
        check_tensors(path, tensors, expect)
    bad = nonfinite(tensors)
    if bad:
        raise UserError(f"{path} holds NaN or infinite values (in {_names(bad)}); {_DAMAGED}")
    return tensors


def check_tensors(path: Path, tensors: dict[str, torch.Tensor], expect: dict[str, torch.Tensor]) -> None:
    """Names, shapes and dtypes of `tensors` must match `expect` (floating stays floating; others equal)."""
    missing, extra = sorted(set(expect) - set(tensors)), sorted(set(tensors) - set(expect))
    if missing or extra:
        what = "; ".join(f"{k} {_names(v)}" for k, v in (("missing", missing), ("unexpected", extra)) if v)
        raise UserError(f"{path} does not fit this model ({what}); {_DAMAGED}")
    for name, want in expect.items():
        got = tensors[name]
        if tuple(got.shape) != tuple(want.shape):
            raise UserError(f"{path} does not fit this model ({name} has shape {tuple(got.shape)}, the model "
                            f"needs {tuple(want.shape)}); {_DAMAGED}")
        if got.is_floating_point() != want.is_floating_point() or (not want.is_floating_point() and got.dtype != want.dtype):
            raise UserError(f"{path} does not fit this model ({name} is {got.dtype}, the model needs {want.dtype}); "
                            f"{_DAMAGED}")


def nonfinite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating tensors holding NaN or ±inf (one host read per device, not one per tensor)."""
    names = [k for k, v in tensors.items() if v.is_floating_point() and v.numel()]
    by_device: dict[torch.device, list[str]] = {}
    for k in names:
        by_device.setdefault(tensors[k].device, []).append(k)
    bad = []
    for keys in by_device.values():
        finite = torch.stack([torch.isfinite(tensors[k]).all() for k in keys]).tolist()
        bad += [k for k, ok in zip(keys, finite) if not ok]
    return bad


def _names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    """safetensors file written atomically; tensors made contiguous CPU copies first. Non-finite tensors are
    refused before anything is written: they must never replace finite ones."""
    from safetensors.torch import save

    cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    bad = nonfinite(cpu)
    if bad:
        raise UserError(f"not writing {path}: {_names(bad)} hold NaN or infinite values, so the file keeps its "
                        "last finite ones; fix: a lower --lr (the usual cause of diverging weights), then run again")
    atomic_write_bytes(Path(path), save(cpu, metadata=metadata))


# --- writing: atomic -----------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it (a link at `path` is replaced, never
    written through)."""
    path = Path(path)
    pause = _test_hooks(path)
    try:
        _write_replace(path, data, pause)
    except OSError as err:  # name the file the user asked for, not the temp file (`run/outputs.py` words it)
        if err.filename == str(path):
            raise
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err


def _write_replace(path: Path, data: bytes, pause: float) -> None:
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


def atomic_save(path: str | Path, save: Callable[[BinaryIO], object]) -> Path:
    """`save(file)` writes a file's bytes (PIL `image.save`, matplotlib `savefig`, `np.save`) to memory, then
    they reach `path` atomically: a kill or a full disk mid-way never leaves half a picture or array.

    Writers that pick a format from the file name need it given (`format=suffix_format(path)`)."""
    buffer = io.BytesIO()
    save(buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def suffix_format(path: str | Path, default: str = "png") -> str:
    """The format a file name asks for ("x.pdf" -> "pdf"), for writers given a buffer instead of a name."""
    return Path(path).suffix[1:].lower() or default


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, data: dict | list) -> None:
    """Indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def append_line(path: Path, line: str) -> None:
    """Append one line to a regular file, never through a link (a link is refused, its target untouched)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENXIO):  # a link; a FIFO nobody reads
            raise UserError(f"{path} is a link or a special file; fix: replace it with a regular file") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"{path} is not a regular file; fix: replace it with a regular file")
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make renames inside `folder` durable (a power cut after this keeps them)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["JSONL_LIMIT", "JSON_LIMIT", "TEMP_SUFFIX", "TENSOR_LIMIT", "append_line", "atomic_save", "atomic_write_bytes",
           "atomic_write_text", "check_tensors", "checked_file", "fsync_dir", "inside", "load_tensors", "nonfinite",
           "parse_json", "read_bytes", "read_json", "read_jsonl", "save_tensors", "suffix_format", "write_json"]

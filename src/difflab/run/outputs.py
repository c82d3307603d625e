"""Outputs checked before the work that fills them, and write errors as one line naming the path.

Why: sampling, evaluating or exporting can take minutes; finding only at the last step that `--out x.txt`
has the wrong extension, names a folder, or lies on a read-only or full disk throws that work away. Every
command checks its outputs with `check_file` / `check_folder` before computing, and runs under `guard`, which
turns an `OSError` from any write (ENOSPC, EROFS, EACCES) into one `UserError` line with the path and the fix.
Writes themselves are atomic (`files.atomic_write_bytes`), so a failed one leaves the old file, never half a file.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import stat
import sys
import tempfile
from pathlib import Path

from difflab.errors import UserError
from difflab.run import files
from difflab.run.files import TEMP_SUFFIX

FIXES = {errno.ENOSPC: "free disk space or write to another disk", errno.EDQUOT: "free space within your quota",
         errno.EROFS: "write to a writable file system", errno.EACCES: "check the permissions of the folder",
         errno.EPERM: "check the permissions of the folder"}


def check_file(path: str | Path, flag: str, suffixes: tuple[str, ...]) -> Path:
    """`path` as an output file: one of `suffixes` (".png"), not a folder or special file, its folder writable.
    A name with no suffix gets the first one ("edit" -> "edit.png"): the path to write is the one returned."""
    path = Path(path)
    kind = _kind(path)
    if kind == "a folder":
        raise UserError(f"{flag} {path} is a folder; fix: give a file name, e.g. {path / ('out' + suffixes[0])}")
    if kind not in (None, "a file"):
        raise UserError(f"{flag} {path} is {kind}; fix: give a new file name")
    if not path.suffix and kind is None:
        path = path.with_name(path.name + suffixes[0])
        if _kind(path) not in (None, "a file"):
            raise UserError(f"{flag} {path} is {_kind(path)}; fix: give a new file name")
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {path}: this output is written as {' or '.join(suffixes)}; fix: a file name ending "
                        f"in {suffixes[0]}, e.g. {path.with_suffix(suffixes[0]).name}")
    _probe(path.parent, flag, path)
    return path


def check_folder(path: str | Path, flag: str) -> Path:
    """`path` as an output folder: a folder or not there yet, and writable (nothing is created)."""
    path = Path(path)
    kind = _kind(path)
    if kind not in (None, "a folder"):
        raise UserError(f"{flag} {path} is {kind}, not a folder; fix: give a folder path")
    _probe(path, flag, path)
    return path


def write_error(err: OSError, *, kept: str = "", then: str = "run again") -> str:
    """One line for a failed write: the path, the cause, what was `kept` (if anything) and what to do."""
    where = err.filename if err.filename is not None else "an output file"
    fix = FIXES.get(err.errno, "check the path, free space and permissions")
    return f"cannot write {where} ({err.strerror or err}){'; ' + kept if kept else ''}; fix: {fix}, then {then}"


def kept_elsewhere(result: dict, err: OSError) -> UserError:
    """A computed result whose JSON could not be written (a full or read-only disk): saved in the temp folder
    instead, or printed when that fails too, so minutes of work are not lost; the error says where it is."""
    name = Path(err.filename).stem if err.filename else "result"
    spare = Path(tempfile.gettempdir()) / f"difflab-{name}-{os.getpid()}.json"
    try:
        files.write_json(spare, result)
        kept = f"the results are kept in {spare}"
    except OSError:
        print(json.dumps(result))
        sys.stdout.flush()
        kept = "the results are printed above"
    return UserError(write_error(err, kept=kept, then="copy them there"))


def guard(command):
    """Wrap a CLI command (`func(args)`): an `OSError` escaping it becomes one `UserError` line."""

    @functools.wraps(command)
    def run(args):
        try:
            return command(args)
        except OSError as err:
            raise UserError(write_error(err)) from None

    return run


def _kind(path: Path) -> str | None:
    """None (nothing there), "a file", "a folder", or the special kind (FIFO, device, socket)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:  # a parent is a file
        return "below a file"
    except OSError as err:
        raise UserError(f"cannot check {path} ({err.strerror}); fix: check the folder's permissions") from None
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a FIFO" if stat.S_ISFIFO(mode) else "a device or special file"


def _probe(folder: Path, flag: str, target: Path) -> None:
    """Create and remove a temp file in `folder` (or its nearest existing parent, which a write would create
    folders in), so a read-only, full or foreign place is refused now; nothing is left behind."""
    existing = folder if str(folder) else Path(".")
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {target}: {existing} is a file, not a folder; fix: give a path under a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=existing, prefix=".difflab-write-test.", suffix=TEMP_SUFFIX)
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        fix = FIXES.get(err.errno, "give a writable path")
        raise UserError(f"{flag} {target}: cannot write in {existing} ({err.strerror}); fix: {fix}") from None


__all__ = ["check_file", "check_folder", "guard", "write_error"]

"""The one writer of a run folder: an OS lock (`flock`) on `RUN/.lock`, held while a run trains.

Why flock: the kernel drops it when its process ends, however it ends (kill -9 included), so a killed
run is resumable at once and there is no stale lock to clean up. The holder writes its pid, host and
start time into the file, so a refused second writer can say who holds it. Readers (sample, report,
evaluate) take no lock: every file is replaced atomically, so they always read a whole one. The lock is
re-entrant within one process (the API and the trainer may both take it); a forked child is another
process and must take its own.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from difflab.errors import UserError

LOCK_FILE = ".lock"  # kept after the run (removing it would race with a writer just opening it)
_held: dict[str, tuple[int, int, int]] = {}  # folder -> (pid, fd, depth) of the locks this process holds


class RunLock:
    """`with RunLock(folder):` — or `acquire()` / `release()` — own `folder` as its one writer."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.key: str | None = None

    def acquire(self) -> RunLock:
        """Take the lock, or raise a one-line `UserError` naming the process that holds it."""
        key = str(self.folder.resolve())
        pid, fd, depth = _held.get(key, (0, -1, 0))
        if pid == os.getpid():
            _held[key], self.key = (pid, fd, depth + 1), key
            return self
        fd = self._open()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise UserError(f"{self.folder} is being written by {holder(self.path)}; fix: wait until it ends (or stop "
                            "it), or give another --out") from None
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode(), 0)
        _held[key], self.key = (os.getpid(), fd, 1), key
        return self

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENXIO):
                raise UserError(f"{self.path} is a link or a special file; fix: delete it (difflab makes its own)") from None
            raise

    def release(self) -> None:
        """Let go (the outermost release of this process unlocks); a second release does nothing."""
        key, self.key = self.key, None
        if key is None or key not in _held:
            return
        pid, fd, depth = _held[key]
        if depth > 1:
            _held[key] = (pid, fd, depth - 1)
            return
        del _held[key]
        if pid == os.getpid():
            os.ftruncate(fd, 0)  # no stale owner shown; the close below unlocks
            os.close(fd)

    def __del__(self) -> None:  # a trainer dropped without `release` (an error while it was being built)
        with contextlib.suppress(Exception):  # interpreter shutdown: the process end unlocks anyway
            self.release()

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def holder(path: Path) -> str:
    """"pid 123 on host h since 2026-01-01 10:00:00 UTC", from what the holder wrote into the lock file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            info = json.loads(os.read(fd, 4096))
        finally:
            os.close(fd)
        return f"pid {int(info['pid'])} on host {str(info['host'])[:100]} since {str(info['since'])[:40]}"
    except (OSError, ValueError, KeyError, TypeError):  # the holder is still writing it, or it was damaged
        return f"another process (its name in {path} is unreadable)"


__all__ = ["LOCK_FILE", "RunLock", "holder"]

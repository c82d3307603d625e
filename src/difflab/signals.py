"""SIGINT (Ctrl-C) and SIGTERM stop a command one way: a `Stopped` line, exit 130 / 143, nothing half-written.

Why: without a handler SIGTERM kills Python outright (exit -15, no message, a bar left hanging, a chunk of
PNGs on disk that no metadata lists). Inside `Stopping(say)` both signals raise `Interrupted`, a
`KeyboardInterrupt`, so every `with` and `finally` runs as for Ctrl-C; `hold()` around a write defers them
to its end, so a write is whole or not begun. On the way out the interrupt becomes
`Stopped("stopped by SIGTERM " + say())`: `say` keeps what can be kept and tells it, at that moment.

    with Stopping(lambda: f"after {done} of {n} images; kept: ...") as stop:
        for chunk in chunks:
            with stop.hold():
                write(chunk)

Handlers are restored on exit; a signal the process ignores (a sweep worker's SIGINT, nohup) stays ignored.
The trainer does not raise: it checks a flag between steps (`training/stopping.py`), as a step cannot be cut.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

from difflab.errors import Stopped

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A signal raised like Ctrl-C; `signal_name` says which ("SIGTERM", "SIGINT")."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def signal_name(err: BaseException) -> str:
    return getattr(err, "signal_name", "SIGINT")  # a plain KeyboardInterrupt is Ctrl-C


def stopped_by(name: str) -> str:
    """The first words of the line: Ctrl-C "interrupted" (as the CLI has always said), else "stopped by SIGTERM"."""
    return "interrupted" if name == "SIGINT" else f"stopped by {name}"


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM raises `Interrupted("SIGTERM")`, as Ctrl-C raises KeyboardInterrupt: the CLI's net for commands
    without words of their own (edit, explain, export, report, studio). Every `finally` runs, an atomic write
    in progress deletes its temp file, and the CLI prints one line and exits 143; without it Python dies at
    once (exit -15, no message, a bar left mid-line). `Stopping` and the trainer set their own handlers inside
    and put this one back."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return

    def raise_interrupt(signum, frame):
        raise Interrupted("SIGTERM")

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


class Stopping:
    """Context manager: SIGINT/SIGTERM inside raise `Interrupted` (deferred while `hold()` is active), and the
    exception that leaves it after one becomes `Stopped` with `say()`'s words (exit 130 / 143 in the CLI).

    Any exception after a signal counts as the stop: one raised inside a C extension's callback can come out
    as that library's own error (a safetensors read said "could not determine the shape ..."). `say` runs
    with signals held, so it may also save what can be kept."""

    def __init__(self, say: Callable[[], str]) -> None:
        self.say, self.received, self.pending = say, None, False
        self._held, self._previous = 0, {}

    def _handle(self, signum, frame) -> None:
        self.received = self.received or signal.Signals(signum).name
        if self._held:
            self.pending = True  # raised when the write in progress is whole
            return
        raise Interrupted(self.received)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """A write that must not be cut: a signal during it is raised once it is done."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if not self._held and self.pending:
            self.pending = False
            raise Interrupted(self.received)

    def __enter__(self) -> Stopping:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for sig in SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind, err, tb) -> None:
        try:
            if err is None or isinstance(err, Stopped) or not (isinstance(err, KeyboardInterrupt) or self.received):
                return
            name = err.signal_name if isinstance(err, Interrupted) else self.received or "SIGINT"
            self._held += 1  # a second signal now would cut what `say` saves
            raise Stopped(f"{stopped_by(name)} {self.say()}", name) from None
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
            self._previous = {}


__all__ = ["Interrupted", "Stopping", "signal_name", "stopped_by", "terminate_as_interrupt"]

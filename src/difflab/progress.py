"""Progress of every long step, one way: a tqdm bar with an ETA on a terminal, a few plain lines in a log.

    with progress.bar(2000, "evaluate: sampling", unit="img") as shown:
        for images in chunks:
            shown.update(len(images))

On a terminal (stderr is a TTY) that is a tqdm bar. Piped into a file it is one line per stage,
"evaluate: sampling 2000 img ... done in 41s", plus one line every half minute while a long stage runs,
never the thousands of carriage returns tqdm writes into a file. `set_quiet(True)` (the CLI's
`--quiet`) or DIFFLAB_QUIET=1 silences all of it; results and errors are the callers' to print.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

HEARTBEAT_S = 30.0  # piped: a long stage says where it is this often (no silent minute; a 13-minute job: 26 lines)
clock = time.monotonic  # tests replace it to fake elapsed time

_quiet: bool | None = None  # None: follow $DIFFLAB_QUIET
_open: tuple[TextIO, Bar] | None = None  # a piped stage line written up to "...", waiting for "done in"


def set_quiet(quiet: bool | None) -> bool | None:
    """Silence (True) or show (False) every bar and stage line of this process; None: $DIFFLAB_QUIET decides.
    Returns the previous setting, so a caller can restore it."""
    global _quiet
    previous, _quiet = _quiet, quiet
    return previous


def is_quiet() -> bool:
    if _quiet is not None:
        return _quiet
    return os.environ.get("DIFFLAB_QUIET", "").strip().lower() in ("1", "true", "yes", "on")


def clock_text(seconds: float) -> str:
    """41 -> "41s", 130 -> "2m10s"."""
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes}m{s:02d}s" if minutes else f"{s}s"


def _is_tty(stream) -> bool:
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def end_line() -> None:
    """Anything else written to a stream ends the pending "label ..." line there first."""
    global _open
    if _open is not None:
        stream, _ = _open
        _open = None
        stream.write("\n")
        stream.flush()


def line(text: str, *, stream: TextIO | None = None) -> None:
    """One line of progress (not a result): on stderr, above a live bar, silent when quiet."""
    if is_quiet():
        return
    stream = stream or sys.stderr
    end_line()
    if _is_tty(stream):
        from tqdm.auto import tqdm

        tqdm.write(text, file=stream)  # keeps a live bar intact below it
    else:
        stream.write(text + "\n")
        stream.flush()


class Bar:
    """One stage: `update(n)` / `set(n)` as work is done, `note(text)` for the latest figures, `close()` at the end.

    `total` None: no count, just "label ... done in X". `percent`: show a percentage, not n/total (for a
    total that is not a count of things, e.g. a training budget in per-mille). `lines` False: on a pipe
    the caller writes its own lines (`line`), e.g. one per epoch; the bar is for terminals only."""

    def __init__(self, total: int | None, label: str, *, unit: str = "it", enabled: bool = True,
                 stream: TextIO | None = None, percent: bool = False, lines: bool = True) -> None:
        self.total, self.label, self.unit, self.percent = total, label, unit, percent
        self.scaled = unit == "B"  # bytes: 25.2MB, not 26,421,856
        self.stream = stream or sys.stderr
        self.tty = enabled and not is_quiet() and _is_tty(self.stream) and total is not None
        self.shown = self.tty or (enabled and not is_quiet() and lines)
        self.n, self.postfix, self.closed, self.failed = 0, "", False, False
        self.started = self.last_line = clock()
        self._tqdm = self._make_tqdm() if self.tty else None
        if self.shown and not self.tty:
            self._open_line()

    def _make_tqdm(self):
        from tqdm.auto import tqdm

        end_line()
        fmt = (self.label + " |{bar}| {percentage:3.0f}% [{elapsed}<{remaining}]{postfix}") if self.percent else None
        return tqdm(total=self.total, desc=self.label, unit=self.unit, file=self.stream, dynamic_ncols=True,
                    bar_format=fmt, unit_scale=self.scaled, unit_divisor=1024 if self.scaled else 1000)

    def _open_line(self) -> None:
        global _open
        end_line()
        size = "" if self.total is None or self.percent else f" {_amount(self.total, self.unit)}"
        self.stream.write(f"{self.label}{size} ...")
        self.stream.flush()
        _open = (self.stream, self)

    def update(self, n: int = 1) -> None:
        self.set(self.n + n)

    def set(self, n: int) -> None:
        """Where the work stands now (absolute), e.g. a budget fraction in per-mille."""
        self.n = n
        if self._tqdm is not None:
            self._tqdm.n = n
            self._tqdm.refresh()
        elif self.shown and not self._finished() and clock() - self.last_line >= HEARTBEAT_S:
            self.last_line = clock()
            line(f"{self.label}: {self._where()}, {clock_text(clock() - self.started)} elapsed{self._left()}"
                 + (f", {self.postfix}" if self.postfix else ""), stream=self.stream)

    def _finished(self) -> bool:
        return self.total is not None and self.n >= self.total  # the "done in" line follows: no heartbeat

    def note(self, text: str) -> None:
        """The latest figures (step, loss, ...): beside the bar on a terminal, in the next line in a log."""
        self.postfix = text
        if self._tqdm is not None:
            self._tqdm.set_postfix_str(text, refresh=True)

    def _where(self) -> str:
        if self.total is None:
            return f"{self.n:,} {self.unit}"
        pct = f"{100 * self.n / max(self.total, 1):.0f}%"
        return pct if self.percent else f"{pct} ({_amount(self.n, self.unit, False)}/{_amount(self.total, self.unit)})"

    def _left(self) -> str:
        if not self.total or self.n <= 0:
            return ""
        elapsed = clock() - self.started
        return f", about {clock_text(elapsed / self.n * max(self.total - self.n, 0))} left"

    def close(self) -> None:
        """Leave the bar where the work stopped: 100% only when it all got done (a Ctrl-C at 30% shows 30%)."""
        global _open
        if self.closed:
            return
        self.closed = True
        if self._tqdm is not None:
            self._tqdm.close()
            return
        if not self.shown:
            return
        took = clock_text(clock() - self.started)
        stopped = self.failed or (self.total is not None and not self._finished())
        at = f" at {self._where()}" if self.total is not None else ""
        end = (f"stopped{at} after {took}" if stopped else f"done in {took}") + \
            (f" ({self.postfix})" if self.postfix else "")
        if _open is not None and _open[1] is self:
            _open = None
            self.stream.write(f" {end}\n")
            self.stream.flush()
        else:
            line(f"{self.label}: {end}", stream=self.stream)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.failed = self.failed or kind is not None  # an error or Ctrl-C inside: "stopped", never "done"
        self.close()


def _amount(n: int, unit: str, with_unit: bool = True) -> str:
    """1234 img -> "1,234 img" (or "1,234"); bytes always in binary units: 26421856 B -> "25.2 MiB"."""
    if unit == "B":
        size, name = next(((s, u) for s, u in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")) if n >= s), (1, "B"))
        return f"{n / size:.1f} {name}" if size > 1 else f"{n:,} B"
    return f"{n:,} {unit}" if with_unit else f"{n:,}"


def bar(total: int | None, label: str, *, unit: str = "it", enabled: bool = True, stream: TextIO | None = None,
        percent: bool = False, lines: bool = True) -> Bar:
    """A progress bar for `total` units of work (None: a stage without a count); use it as a context manager."""
    return Bar(total, label, unit=unit, enabled=enabled, stream=stream, percent=percent, lines=lines)


def stage(label: str, *, enabled: bool = True, stream: TextIO | None = None) -> Bar:
    """A step without a count: "label ... done in 3s" (a line on a terminal too)."""
    return Bar(None, label, enabled=enabled, stream=stream)


__all__ = ["Bar", "bar", "clock_text", "end_line", "is_quiet", "line", "set_quiet", "stage"]

"""Graceful stop: SIGINT (Ctrl-C) and SIGTERM ask the loop to save and exit at the next step boundary.

A signal handler that raised inside a step could leave the optimizer updated but the EMA or the step
counter not, and a snapshot of that would not resume exactly; a flag checked between steps cannot.
A second Ctrl-C falls back to Python's default (KeyboardInterrupt, no save; the last snapshot stays).
"""

from __future__ import annotations

import signal
import threading


class StopRequests:
    """Context manager: while active, `requested` names the first SIGINT/SIGTERM received (or None)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        self.requested = signal.Signals(signum).name
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


__all__ = ["StopRequests"]

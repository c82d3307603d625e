"""The loop: take steps until the budget is spent or a stop is asked for, and call the callbacks.

Every rank agrees on the clock and on a stop, so all leave the loop at the same step. With deferred
checks on many GPUs that collective waits only every `log_every` steps; budgets use the agreed clock.
The loss is read on the host once per log line; the callbacks do everything else (metrics rows, the
progress bar, sample grids, periodic snapshots), each one job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch

from difflab.training import distributed
from difflab.training.budget import Counters
from difflab.training.stopping import StopRequests

LogCallback = Callable[[float, float], None]  # (loss, images per second) at each log line
StepCallback = Callable[[], None]  # after every step


def never(step: int) -> str | None:
    """The default extra stop check (the test hook `DIFFLAB_TEST_STOP` replaces it)."""
    return None


class Loop:
    def __init__(self, train_step: Callable[[], torch.Tensor], settle: Callable[[], None],
                 progress: Callable[[], float], counters: Counters, *, log_every: int, agree_each_step: bool = True,
                 on_log: Iterable[LogCallback] = (), on_step: Iterable[StepCallback] = (),
                 stop_signal: Callable[[int], str | None] = never):
        self.train_step, self.settle, self.progress, self.n = train_step, settle, progress, counters
        self.log_every, self.agree_each_step, self.stop_signal = log_every, agree_each_step, stop_signal
        self.on_log, self.on_step = list(on_log), list(on_step)

    def run(self, stop: StopRequests) -> str | None:
        """Train until the budget is spent or a stop is asked for; returns the stop signal's name, if any."""
        n, requested = self.n, None
        started, elapsed0, clock = time.monotonic(), n.elapsed, n.elapsed
        window = (time.monotonic(), n.seen)  # images/s over the steps since the last log line
        while True:
            requested = requested or stop.requested or self.stop_signal(n.step)
            if self.agree_each_step or n.step % self.log_every == 0:
                n.elapsed, stopped = distributed.agree(clock, requested)
                if stopped or self.progress() >= 1.0:
                    return stopped
            loss = self.train_step()
            clock = elapsed0 + time.monotonic() - started
            if self.agree_each_step:
                n.elapsed = clock
            if n.step % self.log_every == 0:
                window = self._log(loss, window)
            for callback in self.on_step:
                callback()

    def _log(self, loss: torch.Tensor, window: tuple[float, int]) -> tuple[float, int]:
        self.settle()
        value = float(loss)  # the one host read of the loss per log line
        now = time.monotonic()
        images_per_s = (self.n.seen - window[1]) / max(1e-9, now - window[0])
        for callback in self.on_log:
            callback(value, images_per_s)
        return now, self.n.seen


__all__ = ["Loop", "never"]

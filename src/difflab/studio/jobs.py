"""One job at a time on the loaded model, and a job's sampling steps as a stream the page can show.

Gradio's queue already serialises the page's model events; `JobLock` is the guarantee behind it (a second
tab, an API call), and `stream` turns the sampler's step callback into an iterator: the work runs in a
thread and hands over each step, so a generator handler can yield a grid per step.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from difflab.errors import UserError

_DONE = object()


class JobLock:
    """At most one job on the model: a second one waits; `busy` names the running one (for the page to say so)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current: str | None = None

    @property
    def busy(self) -> str | None:
        return self.current

    @contextmanager
    def job(self, name: str, *, wait: bool = True):
        if not self._lock.acquire(blocking=wait):
            raise UserError(f"the model is busy with {self.current or 'another job'}; fix: wait for it to finish, then try again")
        self.current = name
        try:
            yield
        finally:
            self.current = None
            self._lock.release()


def stream(work: Callable[[Callable[[object], None]], object]) -> Iterator[tuple[str, object]]:
    """Run `work(report)` in a thread; yield `("step", x)` for each `report(x)`, then `("done", result)`.

    An error in the work is raised here, in the consumer. The work runs to its end even if the consumer
    stops early (a closed tab), so the lock around it is released by the work, not by the page."""
    steps: queue.Queue = queue.Queue()

    def run() -> None:
        try:
            steps.put(("done", work(lambda x: steps.put(("step", x)))))
        except BaseException as err:  # handed to the consumer, which re-raises it
            steps.put(("error", err))
        steps.put(_DONE)

    threading.Thread(target=run, name="difflab-studio-job", daemon=True).start()
    while (item := steps.get()) is not _DONE:
        kind, value = item
        if kind == "error":
            raise value
        yield kind, value


__all__ = ["JobLock", "stream"]

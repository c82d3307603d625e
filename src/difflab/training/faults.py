"""Test hooks that inject faults into a real run, so the reliability promises can be tested end to end.

Off unless an environment variable asks (a subprocess test cannot monkeypatch); read when the
Trainer is built. When none is set, the step and the loop run their plain functions untouched:
- `DIFFLAB_TEST_BAD_STEPS="3:loss:nan,5-40:grad:inf"`: on those attempts (1-based count of
  steps tried in this process) the loss, or one gradient, becomes NaN or inf;
- `DIFFLAB_TEST_STOP=STEP[:RANK]`: at STEP the loop acts as if SIGTERM had reached this process (only
  rank RANK, when given), so a test can stop a multi-process run at a known step;
- `DIFFLAB_TEST_DEFERRED_CHECKS=1`: a CPU run checks for non-finite steps on the device and reads
  counters every log line, as a GPU run does, so that path is tested (with many processes too) on CPU.
The write hooks (`DIFFLAB_TEST_SLOW_WRITES`, `DIFFLAB_TEST_RANK0_WRITES`) live in `difflab.run.files`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from difflab.errors import UserError
from difflab.training.loop import never

if TYPE_CHECKING:
    from difflab.training.step import Step


@dataclass(frozen=True)
class BadStep:
    first: int  # attempts first..last (1-based, inclusive)
    last: int
    where: str  # "loss" | "grad"
    value: float  # nan | inf | -inf


@dataclass(frozen=True)
class Faults:
    """Non-finite values to inject, by attempt number."""

    bad: tuple[BadStep, ...] = ()
    stop_step: int | None = None  # DIFFLAB_TEST_STOP: act as if SIGTERM arrived at this step ...
    stop_rank: int | None = None  # ... in this rank only (None: every rank)
    deferred_checks: bool = False  # DIFFLAB_TEST_DEFERRED_CHECKS: the GPU's way of checking, on any device

    @classmethod
    def parse(cls, text: str) -> Faults:
        items = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            try:
                span, where, value = part.split(":")
                first, _, last = span.partition("-")
                item = BadStep(int(first), int(last or first), where, float(value))
            except ValueError:
                raise UserError(f"DIFFLAB_TEST_BAD_STEPS: bad item {part!r}; use ATTEMPT[-LAST]:loss|grad:nan|inf") from None
            if where not in ("loss", "grad"):
                raise UserError(f"DIFFLAB_TEST_BAD_STEPS: {where!r} must be loss or grad")
            items.append(item)
        return cls(tuple(items))

    @classmethod
    def from_env(cls) -> Faults:
        faults = cls.parse(os.environ.get("DIFFLAB_TEST_BAD_STEPS", ""))
        deferred = os.environ.get("DIFFLAB_TEST_DEFERRED_CHECKS", "") not in ("", "0")
        stop = os.environ.get("DIFFLAB_TEST_STOP", "")
        if not stop:
            return cls(faults.bad, deferred_checks=deferred)
        try:
            step, _, rank = stop.partition(":")
            return cls(faults.bad, int(step), int(rank) if rank else None, deferred)
        except ValueError:
            raise UserError(f"DIFFLAB_TEST_STOP={stop!r}; use STEP or STEP:RANK") from None

    def install(self, step: Step) -> None:
        """Wrap the step's `compute_loss` and `clip_grads` to poison the attempts asked for (none: untouched)."""
        if not self.bad:
            return
        compute_loss, clip_grads, attempt = step.compute_loss, step.clip_grads, [0]

        def poisoned_loss(loss_fn):
            attempt[0] += 1
            return self.poison_loss(compute_loss(loss_fn), attempt[0])

        def poisoned_clip():
            self.poison_grads(step.model, attempt[0])  # after backward, before the norm is taken
            return clip_grads()

        step.compute_loss, step.clip_grads = poisoned_loss, poisoned_clip

    def stop_check(self) -> Callable[[int], str | None]:
        """The loop's extra stop check: `stop_signal` when DIFFLAB_TEST_STOP is set, else the plain `never`."""
        return never if self.stop_step is None else self.stop_signal

    def stop_signal(self, step: int) -> str | None:
        """"SIGTERM" when the test hook asks this process to stop at `step`."""
        if step != self.stop_step or self.stop_rank not in (None, int(os.environ.get("RANK", "0"))):
            return None
        return "SIGTERM"

    def value(self, attempt: int, where: str) -> float | None:
        for item in self.bad:
            if item.where == where and item.first <= attempt <= item.last:
                return item.value
        return None

    def poison_loss(self, loss: torch.Tensor, attempt: int) -> torch.Tensor:
        value = self.value(attempt, "loss")
        return loss if value is None else loss * value

    def poison_grads(self, model: torch.nn.Module, attempt: int) -> None:
        value = self.value(attempt, "grad")
        if value is not None:
            first = next(p for p in model.parameters() if p.grad is not None)
            first.grad.view(-1)[0] = value  # one bad element is enough to make the norm non-finite


__all__ = ["BadStep", "Faults"]

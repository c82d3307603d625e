"""Test hooks that inject faults into a real run, so the reliability promises can be tested end to end.

Off unless an environment variable asks (a subprocess test cannot monkeypatch):
- `DIFFLAB_TEST_SLOW_WRITES=SECONDS`: every atomic write sleeps halfway through its data, so a kill
  lands inside a checkpoint write often;
- `DIFFLAB_TEST_BAD_STEPS="3:loss:nan,5-40:grad:inf"`: on those attempts (1-based count of
  `train_step` calls in this process) the loss, or one gradient, becomes NaN or inf;
- `DIFFLAB_TEST_STOP=STEP[:RANK]`: at STEP the loop acts as if SIGTERM had reached this process (only
  rank RANK, when given), so a test can stop a multi-process run at a known step;
- `DIFFLAB_TEST_RANK0_WRITES=1`: an atomic write from a process whose RANK is not 0 raises.
- `DIFFLAB_TEST_DEFERRED_CHECKS=1`: a CPU run checks for non-finite steps on the device and reads
  counters every log line, as a GPU run does, so that path is tested (with many processes too) on CPU.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from difflab.errors import UserError


def write_pause() -> float:
    """Seconds to sleep inside each atomic write (0: no pause)."""
    text = os.environ.get("DIFFLAB_TEST_SLOW_WRITES", "")
    try:
        return float(text) if text else 0.0
    except ValueError:
        raise UserError(f"DIFFLAB_TEST_SLOW_WRITES={text!r} is not a number of seconds") from None


def check_writer(path) -> None:
    """Test hook: with many processes only rank 0 may write; make any other writer fail loudly."""
    rank = os.environ.get("RANK", "0")
    if os.environ.get("DIFFLAB_TEST_RANK0_WRITES") and rank != "0":
        raise RuntimeError(f"rank {rank} wrote {path}; only rank 0 may write")


def maybe_pause() -> None:
    pause = write_pause()
    if pause:
        time.sleep(pause)


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
    def parse(cls, text: str) -> "Faults":
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
    def from_env(cls) -> "Faults":
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


__all__ = ["Faults", "maybe_pause", "write_pause"]

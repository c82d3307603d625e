"""The optimisation step: loss, backward, clipping, and the guard that keeps non-finite steps out.

A non-finite loss or gradient never reaches the weights, the EMA or Adam's moments. Checked every step
(free on a CPU), a skipped step does not count toward the budget. With deferred checks (a GPU, where a
host read stalls the queue) the device skips the update itself (fused AdamW's `found_inf`, a zero EMA
step), the step counts, and `settle()` reads the skip counters once per log line.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from difflab.errors import UserError
from difflab.training import distributed
from difflab.training.budget import Counters
from difflab.training.ema import EMA

MAX_BAD_STEPS = 20  # consecutive non-finite losses/gradients before training stops


class Step:
    """`step(loss_fn, lr)`: one optimiser step on `loss_fn()`; returns its loss (0-dim, on the device; NaN when
    skipped). `compute_loss` and `clip_grads` are plain methods; the test hooks (`Faults.install`) wrap them."""

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, counters: Counters, *,
                 ema: EMA | None = None, grad_clip: float = 1.0, check_every_step: bool = True,
                 max_bad: int = MAX_BAD_STEPS, advice: Callable[[], str] = lambda: "fix: a lower --lr"):
        self.model, self.optimizer, self.counters, self.ema = model, optimizer, counters, ema
        self.grad_clip, self.check_every_step, self.max_bad, self.advice = grad_clip, check_every_step, max_bad, advice
        self.skipped = 0  # non-finite steps skipped over the whole run (saved in the state)
        self.bad = 0  # non-finite steps in a row
        self.skips: torch.Tensor | None = None  # deferred checks: (skipped, bad) on the device

    def compute_loss(self, loss_fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        return loss_fn()

    def clip_grads(self) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)

    def __call__(self, loss_fn: Callable[[], torch.Tensor], lr: float) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss = self.compute_loss(loss_fn)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = self.clip_grads()
        loss = distributed.mean(loss).detach()  # the global batch's loss: every rank skips (or not) the same steps
        ok = torch.isfinite(loss) & torch.isfinite(grad_norm)  # 0-dim bool, on the device
        if not self.check_every_step:
            return self._deferred(loss, ok)
        if not ok:
            self.bad += 1  # skipped: a NaN/inf never reaches the weights
            self.skipped += 1
            self._stop_if_too_many_bad()
            return torch.full_like(loss, math.nan)
        self.bad = 0
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.counters.step += 1
        return loss

    def _deferred(self, loss: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        """The step without reading `ok` on the host: the device skips the update itself."""
        if self.skips is None:
            self.skips = torch.tensor([self.skipped, self.bad], device=loss.device)
        bad = (~ok).long()
        self.optimizer.found_inf = bad.float()  # fused AdamW: no change to weights, moments or its step count
        try:
            self.optimizer.step()
        finally:
            del self.optimizer.found_inf
        if self.ema is not None:
            self.ema.update(self.model, where=ok)
        self.skips += bad  # (skipped, consecutive bad) ...
        self.skips[1] *= bad  # ... the run of bad steps ends at a good one
        self.counters.step += 1
        return torch.where(ok, loss, math.nan)

    def settle(self) -> None:
        """Deferred checks: read the skip counters (one host read) and stop after too many bad steps in a row."""
        if self.skips is not None:
            self.skipped, self.bad = self.skips.tolist()
            self._stop_if_too_many_bad()

    def _stop_if_too_many_bad(self) -> None:
        if self.bad >= self.max_bad:
            raise UserError(f"{self.bad} consecutive non-finite losses or gradients at step {self.counters.step}; "
                            f"{self.advice()}")


__all__ = ["MAX_BAD_STEPS", "Step"]

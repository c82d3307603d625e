"""Exponential moving average of the weights (the network we sample from)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """θ_ema ← d θ_ema + (1 − d) θ with d = min(decay, (1 + n) / (10 + n)) (warm-up for short runs)."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module, where: torch.Tensor | None = None) -> None:
        """One averaging step; `where` (0-dim bool on the device) False makes it a no-op without a host read."""
        weight = 1.0 - self.current_decay()
        if where is not None:
            weight = where * weight  # a 0-dim tensor: the same lerp, weight 0 when the step was skipped
        ema_params = list(self.model.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], weight)
        for b_ema, b in zip(self.model.buffers(), model.buffers()):
            b_ema.copy_(b)
        self.updates += 1

"""Batches from a tensor-resident dataset: a shuffled order per epoch, batches are gathers on the device."""

from __future__ import annotations

import torch

from difflab.training.budget import Counters


class Batches:
    """`next()` -> images `(B, C, H, W)` and their dataset indices `(B,)` (on the device; the conditioning
    looks them up). The order and position are saved in the snapshot; `generator` draws each epoch's order."""

    def __init__(self, images: torch.Tensor, batch_size: int, generator: torch.Generator, counters: Counters,
                 device: torch.device) -> None:
        self.images = images.to(device)  # (N, C, H, W), resident
        self.batch_size, self.generator, self.counters, self.device = batch_size, generator, counters, device
        self.position = 0
        self.set_order(torch.randperm(len(images), generator=generator))

    def set_order(self, order: torch.Tensor) -> None:
        """The epoch's data order: kept on CPU (saved in the state) and copied to the device once."""
        self.order, self.device_order = order, order.to(self.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.position + self.batch_size > len(self.order):
            self.set_order(torch.randperm(len(self.images), generator=self.generator))
            self.position = 0
        idx = self.device_order[self.position : self.position + self.batch_size]
        self.position += len(idx)
        self.counters.seen += len(idx)
        return self.images[idx], idx


__all__ = ["Batches"]

"""`Condition`: what a `Denoiser` is conditioned on for N images — class ids, prompt embeddings, or nothing.

Its `null()` is the unconditional branch of classifier-free guidance: the null class id
(`num_classes`) for a class model, the empty prompt (all-zero tokens) for a text model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from difflab.errors import UserError


@dataclass(frozen=True)
class Condition:
    values: torch.Tensor | None  # class ids (N,) long, or prompt token embeddings (N, L, D) float; None: unconditional
    num_classes: int = 0  # class models: the null class id
    count: int = 0  # N when `values` is None

    @classmethod
    def classes(cls, labels, num_classes: int) -> Condition:
        """Class ids, checked against the model's range."""
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        if num_classes == 0:
            raise UserError("this model is unconditional; fix: drop --label")
        if len(labels):
            low, high = int(labels.min()), int(labels.max())
            if low < 0 or high >= num_classes:
                bad = high if high >= num_classes else low
                raise UserError(f"label {bad} is out of range for a {num_classes}-class model; use 0..{num_classes - 1}")
        return cls(labels, num_classes)

    @classmethod
    def text(cls, embeddings: torch.Tensor) -> Condition:
        """Prompt token embeddings `(N, L, D)` (`difflab.text.PromptEmbedder`)."""
        return cls(embeddings)

    @classmethod
    def unconditional(cls, n: int) -> Condition:
        return cls(None, count=n)

    @property
    def kind(self) -> str:
        if self.values is None:
            return "none"
        return "text" if self.values.is_floating_point() else "class"

    def __len__(self) -> int:
        return self.count if self.values is None else len(self.values)

    def null(self) -> torch.Tensor | None:
        """The unconditional branch for these values."""
        return null_of(self.values, self.num_classes)

    def slice(self, start: int, stop: int) -> Condition:
        if self.values is None:
            return Condition(None, count=max(0, min(stop, self.count) - start))
        return Condition(self.values[start:stop], self.num_classes)

    def select(self, index: torch.Tensor) -> Condition:
        """The rows at `index` (a long tensor): the images a filter sends back to be drawn again."""
        if self.values is None:
            return Condition(None, count=len(index))
        return Condition(self.values[index.to(self.values.device)], self.num_classes)

    def to(self, device) -> Condition:
        return self if self.values is None else Condition(self.values.to(device), self.num_classes)


def null_of(values: torch.Tensor | None, num_classes: int) -> torch.Tensor | None:
    """The null class id (class ids) or the empty prompt (embeddings) for each row of `values`."""
    if values is None:
        return None
    return torch.zeros_like(values) if values.is_floating_point() else torch.full_like(values, num_classes)


def class_labels(num_classes: int, per_class: int) -> torch.Tensor:
    """`[0]*per_class + [1]*per_class + ...`: one row per class in a grid."""
    return torch.arange(num_classes).repeat_interleave(per_class)


__all__ = ["Condition", "class_labels", "null_of"]

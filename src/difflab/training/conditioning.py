"""What the trainer feeds the U-Net as `cond`: class ids or prompt embeddings, with CFG dropout.

    conditioning.batch(idx, drop, generator) -> cond   # idx (B,) image ids; drop (B,) bool: use the null branch
    conditioning.null(b) -> cond                      # the unconditional branch for b images

Text conditioning encodes every caption ONCE, before training (a bank `(K, L, D)` on the device); a
step only gathers rows, choosing one caption per image at random among those it may use.
"""

from __future__ import annotations

import torch

from difflab.data import ImageDataset
from difflab.text.captions import Captions, captions_for


class ClassConditioning:
    """Class ids; dropped ones become the null class `num_classes`."""

    text_dim = 0

    def __init__(self, labels: torch.Tensor, num_classes: int) -> None:
        self.labels, self.num_classes = labels, num_classes  # (N,) on the training device

    def batch(self, idx: torch.Tensor, drop: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        labels = self.labels[idx.to(self.labels.device)]  # (B,)
        return torch.where(drop.to(labels.device), torch.full_like(labels, self.num_classes), labels)

    def null(self, b: int) -> torch.Tensor:
        return torch.full((b,), self.num_classes, dtype=torch.long, device=self.labels.device)


class TextConditioning:
    """Caption token embeddings; dropped ones become the empty prompt (all zeros)."""

    def __init__(self, captions: Captions, bank: torch.Tensor) -> None:
        self.captions, self.bank = captions, bank  # bank (K, L, D) on the training device
        self.choices = captions.choices.to(bank.device)  # (N, M): a step gathers on the device, no host read
        self.counts = captions.counts().to(bank.device)  # (N,)
        self.text_dim = bank.shape[-1]

    @classmethod
    def from_dataset(cls, data: ImageDataset, encoder: str, device: torch.device) -> TextConditioning:
        from difflab.text.prompts import PromptEmbedder

        captions = captions_for(data)
        return cls(captions, PromptEmbedder(encoder)(list(captions.texts)).to(device))

    def batch(self, idx: torch.Tensor, drop: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        idx = idx.to(self.bank.device)
        pick = (torch.rand(len(idx), generator=generator, device=generator.device) * self.counts[idx]).long()  # (B,)
        cond = self.bank[self.choices[idx, pick]]  # (B, L, D): the picked caption of each image
        return cond * (~drop).to(cond.device)[:, None, None]

    def null(self, b: int) -> torch.Tensor:
        return torch.zeros(b, *self.bank.shape[1:], device=self.bank.device)

    def class_prompts(self, data: ImageDataset, per_class: int = 5) -> list[list[str]]:
        """Up to `per_class` training captions per class, in order of first use: what `sample --label` means."""
        out: list[list[str]] = [[] for _ in data.class_names]
        for label, row, count in zip(data.labels.tolist(), self.choices.tolist(), self.counts.tolist()):
            for caption in row[:count]:
                text = self.captions.texts[caption]
                if text not in out[label] and len(out[label]) < per_class:
                    out[label].append(text)
        return out


def make_conditioning(kind: str, data: ImageDataset, *, conditional: bool, encoder: str, device: torch.device):
    """The run's conditioning, or None for an unconditional run."""
    if not conditional:
        return None
    if kind == "text":
        return TextConditioning.from_dataset(data, encoder, device)
    return ClassConditioning(data.labels.to(device), data.num_classes)

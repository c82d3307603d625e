"""`ImageDataset`: the one in-memory dataset type every source produces.

Small image datasets fit in memory, so a dataset is two tensors and a list of names; batches are
index gathers, with no per-item Python on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from difflab.errors import UserError


@dataclass(frozen=True)
class ImageDataset:
    """Images `(N, C, H, W)` float32 in [-1, 1], labels `(N,)` int64 in [0, len(class_names)),
    and optionally one caption per image (image folders with a `metadata.jsonl`)."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    name: str = "dataset"
    captions: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.images.ndim != 4:
            raise UserError(f"{self.name}: images must be (N, C, H, W), got shape {tuple(self.images.shape)}")
        if not self.images.is_floating_point():
            raise UserError(f"{self.name}: images must be floats in [-1, 1], got {self.images.dtype}; "
                            "fix: build the dataset with difflab.data.from_uint8(pixels, labels, class_names, name)")
        if len(self.images):
            low, high = float(self.images.min()), float(self.images.max())  # NaN makes both NaN
            if not (low >= -1.001 and high <= 1.001):
                raise UserError(f"{self.name}: images must be finite values in [-1, 1], found {low:g}..{high:g}; "
                                "fix: scale pixels with x / 127.5 - 1 (or difflab.data.from_uint8) and drop NaN images")
        if self.labels.is_floating_point() or self.labels.is_complex():
            raise UserError(f"{self.name}: labels must be integer class ids, got {self.labels.dtype}; "
                            "fix: labels.long()")
        if self.labels.shape != (self.images.shape[0],):
            raise UserError(
                f"{self.name}: {self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}"
            )
        if len(self.labels) and (int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.class_names)):
            raise UserError(
                f"{self.name}: labels must lie in [0, {len(self.class_names) - 1}], "
                f"found {int(self.labels.min())}..{int(self.labels.max())}"
            )
        if self.captions is not None and len(self.captions) != self.images.shape[0]:
            raise UserError(f"{self.name}: {self.images.shape[0]} images but {len(self.captions)} captions")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """`(C, H, W)` of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor, name: str | None = None) -> ImageDataset:
        captions = None if self.captions is None else tuple(self.captions[i] for i in torch.as_tensor(index).tolist())
        return ImageDataset(self.images[index], self.labels[index], self.class_names, name or self.name, captions)

    def split(self, test_fraction: float = 0.1, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
        """Stratified (per-class) split into train and held-out parts, the same for the same seed."""
        if not 0.0 < test_fraction < 1.0:
            raise UserError(f"test_fraction must be in (0, 1), got {test_fraction}")
        generator = torch.Generator().manual_seed(seed)
        train_idx, test_idx = [], []
        for c in range(self.num_classes):
            idx = torch.nonzero(self.labels == c).flatten()
            idx = idx[torch.randperm(len(idx), generator=generator)]
            n_test = round(len(idx) * test_fraction)
            test_idx.append(idx[:n_test])
            train_idx.append(idx[n_test:])
        train, test = torch.cat(train_idx).sort().values, torch.cat(test_idx).sort().values
        return self.subset(train, f"{self.name}-train"), self.subset(test, f"{self.name}-test")


def from_uint8(images, labels, class_names, name: str, captions=None) -> ImageDataset:
    """Build a dataset from uint8 pixels `(N, H, W)` or `(N, H, W, C)` (0..255) and integer labels."""
    pixels = torch.as_tensor(images)
    if pixels.ndim == 3:
        pixels = pixels.unsqueeze(-1)  # (N, H, W, 1)
    if pixels.ndim != 4:
        raise UserError(f"{name}: expected images (N, H, W[, C]), got shape {tuple(pixels.shape)}")
    x = pixels.permute(0, 3, 1, 2).contiguous().float().div_(127.5).sub_(1.0)  # (N, C, H, W) in [-1, 1]
    y = torch.as_tensor(labels).long().flatten()
    return ImageDataset(x, y, tuple(class_names), name, None if captions is None else tuple(captions))

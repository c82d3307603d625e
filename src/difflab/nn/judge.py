"""The judge: a small CNN classifier whose penultimate layer also serves as a feature space.

The feature layer ends in SiLU, not ReLU: with ReLU a quarter of the 128 dimensions were dead (zero for
every image), which wastes FD/KID/precision-recall capacity; SiLU keeps a gradient below zero, so every
dimension stays alive (tests/evaluation check it on real digits)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class JudgeNet(nn.Module):
    """conv-conv-pool ×2 → 128-d features → logits. ~0.1 M params for 28x28x1."""

    def __init__(self, *, in_channels: int = 1, image_size: int = 28, num_classes: int = 10, width: int = 32,
                 feature_dim: int = 128) -> None:
        super().__init__()
        self.config = dict(in_channels=in_channels, image_size=image_size, num_classes=num_classes, width=width,
                           feature_dim=feature_dim)

        def conv(c_in, c_out):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))

        w = width
        self.body = nn.Sequential(
            conv(in_channels, w), conv(w, w), nn.MaxPool2d(2),  # (B, w, H/2, W/2)
            conv(w, 2 * w), conv(2 * w, 2 * w), nn.MaxPool2d(2),  # (B, 2w, H/4, W/4)
            nn.AdaptiveAvgPool2d(3), nn.Flatten(),  # (B, 2w * 9)
            nn.Linear(2 * w * 9, feature_dim), nn.SiLU(),  # not ReLU: 32 of 128 ReLU features were never active
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, C, H, W)` in [-1, 1] → `(B, feature_dim)`."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


@torch.no_grad()
def class_probabilities(net: nn.Module, images: torch.Tensor, batch_size: int) -> torch.Tensor:
    """`(N, C, H, W)` → softmax `(N, num_classes)` of any classifier, in batches, without a graph: the judge's and
    the sample filter's."""
    net.eval()
    return torch.cat([F.softmax(net(b), dim=1) for b in images.split(batch_size)])


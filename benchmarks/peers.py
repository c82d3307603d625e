"""Peer models the benchmarks compare against, wrapped to difflab's contract `model(x_t, t, cond)`."""

from __future__ import annotations

import torch


class DiffusersCourseUNet(torch.nn.Module):
    """The HF diffusion course's class-conditioned MNIST UNet2DModel, called with our contract.

    `course_unet` is its `ModelSpec -> nn.Module` factory: `Trainer(..., model_factory=course_unet)` or
    `difflab.train(..., model_factory=course_unet)` runs it through the same loop, EMA and `Sampler`
    unchanged (difflab attaches the spec). Class 10 is the null class (CFG), as in difflab.
    """

    def __init__(self, num_classes: int = 10, image_size: int = 28, in_channels: int = 1) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        self.net = UNet2DModel(
            sample_size=image_size, in_channels=in_channels, out_channels=in_channels, layers_per_block=2,
            block_out_channels=(32, 64, 64), down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"), num_class_embeds=num_classes + 1,
        )

    def forward(self, x, t, cond):
        return self.net(x, t, class_labels=cond).sample


def course_unet(spec) -> DiffusersCourseUNet:
    """The model factory of the course UNet for a difflab `ModelSpec` (classes, image size, channels)."""
    return DiffusersCourseUNet(spec.num_classes, spec.image_size, spec.in_channels)

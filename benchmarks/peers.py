"""Peer models the benchmarks compare against, wrapped to difflab's contract `model(x_t, t, cond)`."""

from __future__ import annotations

import torch


class DiffusersCourseUNet(torch.nn.Module):
    """The HF diffusion course's class-conditioned MNIST UNet2DModel, called with our contract.

    `config` carries the keys difflab's Trainer and `generate` read (JSON-serialisable), so the same
    loop, EMA and samplers run it unchanged. Class 10 is the null class (CFG), as in difflab.
    """

    def __init__(self, num_classes: int = 10, image_size: int = 28, in_channels: int = 1) -> None:
        super().__init__()
        from diffusers import UNet2DModel

        self.net = UNet2DModel(
            sample_size=image_size, in_channels=in_channels, out_channels=in_channels, layers_per_block=2,
            block_out_channels=(32, 64, 64), down_block_types=("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
            up_block_types=("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"), num_class_embeds=num_classes + 1,
        )
        self.config = {"peer": "diffusers UNet2DModel (HF course class-conditional config)",
                       "num_classes": num_classes, "in_channels": in_channels, "image_size": image_size}

    def forward(self, x, t, cond):
        return self.net(x, t, class_labels=cond).sample

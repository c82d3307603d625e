"""The U-Net noise predictor: the `Denoiser` contract every sampler and editor relies on.

    model(x_t, t, cond) -> prediction       # (B, C, H, W), (B,), (B,) or None -> (B, C, H, W)

- `t`: integer (or float) timesteps in [0, T), one per image; ignored when `time_conditioning=False`
  (the single-step denoiser).
- `cond`: class ids in [0, num_classes]; the id `num_classes` is the *null class*, the
  unconditional branch of classifier-free guidance. `None` means null for every image.

The constructor's keyword arguments are the model's whole configuration: `unet.config` is saved
next to the weights and `UNet(**config)` rebuilds it.
"""

from __future__ import annotations

import torch
from torch import nn

from difflab.errors import UserError
from difflab.nn.layers import Downsample, ResBlock, SelfAttention, Upsample, group_norm, sinusoidal_embedding


class UNet(nn.Module):
    def __init__(
        self,
        *,
        in_channels: int = 1,  # 1 for MNIST-like, 3 for CIFAR/RGB folders
        image_size: int = 28,  # must be divisible by 2**(len(channels)-1)
        channels: tuple[int, ...] = (32, 64, 128),  # widths per resolution level: 28 -> 14 -> 7 px
        blocks_per_level: int = 1,  # residual blocks per level on the way down (the way up mirrors it)
        attention_levels: tuple[int, ...] = (),  # level indices with self-attention (costly at high res)
        num_classes: int = 10,  # 0: unconditional; else class embedding with a null class for CFG
        time_conditioning: bool = True,  # False: a single-step denoiser that never sees t
        dropout: float = 0.0,
        groups: int = 8,  # GroupNorm groups (reduced to gcd with the width)
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        attention_levels = tuple(int(i) for i in attention_levels)
        if image_size % 2 ** (len(channels) - 1):
            raise UserError(f"image_size {image_size} is not divisible by 2**{len(channels) - 1}; use fewer levels")
        if blocks_per_level < 1 or not channels or any(i >= len(channels) for i in attention_levels):
            raise UserError(f"bad U-Net shape: channels={channels}, attention_levels={attention_levels}")
        self.config = dict(
            in_channels=in_channels, image_size=image_size, channels=list(channels),
            blocks_per_level=blocks_per_level, attention_levels=list(attention_levels),
            num_classes=num_classes, time_conditioning=time_conditioning, dropout=dropout, groups=groups,
        )
        self.num_classes = num_classes
        emb_dim = 4 * channels[0] if (time_conditioning or num_classes) else 0
        self.time_mlp = (
            nn.Sequential(nn.Linear(channels[0], emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
            if time_conditioning else None
        )
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        block = dict(emb_dim=emb_dim, groups=groups, dropout=dropout)

        self.conv_in = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        c_prev, skip_widths = channels[0], []
        for level, c in enumerate(channels):
            stage = nn.ModuleList()
            for _ in range(blocks_per_level):
                stage.append(ResBlock(c_prev, c, **block))
                c_prev = c
                skip_widths.append(c)
            self.down.append(stage)
        self.downsample = nn.ModuleList(Downsample(c, c) for c in channels[:-1])
        self.down_attn = nn.ModuleDict({str(i): SelfAttention(channels[i], groups=groups) for i in attention_levels})

        self.mid1 = ResBlock(c_prev, c_prev, **block)
        self.mid_attn = SelfAttention(c_prev, groups=groups) if attention_levels else nn.Identity()
        self.mid2 = ResBlock(c_prev, c_prev, **block)

        self.up = nn.ModuleList()
        for level in reversed(range(len(channels))):
            stage = nn.ModuleList()
            for _ in range(blocks_per_level):
                stage.append(ResBlock(c_prev + skip_widths.pop(), channels[level], **block))
                c_prev = channels[level]
            self.up.append(stage)
        self.upsample = nn.ModuleList(Upsample(c, c) for c in reversed(channels[1:]))
        self.up_attn = nn.ModuleDict({str(i): SelfAttention(channels[i], groups=groups) for i in attention_levels})

        self.norm_out = group_norm(channels[0], groups)
        self.conv_out = nn.Conv2d(channels[0], in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def embed(self, t: torch.Tensor | None, cond: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
        """Time embedding plus class embedding (null class when `cond` is None): `(B, emb_dim)`."""
        emb = None
        if self.time_mlp is not None:
            emb = self.time_mlp(sinusoidal_embedding(t, self.conv_in.out_channels))
        if self.class_emb is not None:
            if cond is None:
                cond = torch.full((batch,), self.num_classes, dtype=torch.long, device=device)
            c = self.class_emb(cond)
            emb = c if emb is None else emb + c
        return emb

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(t, cond, x.shape[0], x.device)  # (B, emb_dim)
        h = self.conv_in(x)  # (B, c0, H, W)
        skips = []
        for level, stage in enumerate(self.down):
            for blk in stage:
                h = blk(h, emb)
                if str(level) in self.down_attn:
                    h = self.down_attn[str(level)](h)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)  # (B, c, H/2, W/2)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for i, stage in enumerate(self.up):
            level = len(self.up) - 1 - i
            for blk in stage:
                h = blk(torch.cat([h, skips.pop()], dim=1), emb)
                if str(level) in self.up_attn:
                    h = self.up_attn[str(level)](h)
            if i < len(self.upsample):
                h = self.upsample[i](h)  # (B, c, 2H, 2W)
        return self.conv_out(torch.nn.functional.silu(self.norm_out(h)))  # (B, C, H, W)

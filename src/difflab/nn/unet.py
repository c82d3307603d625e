"""The U-Net noise predictor: the `Denoiser` contract every sampler and editor relies on.

    model(x_t, t, cond) -> prediction       # (B, C, H, W), (B,), (B,) or None -> (B, C, H, W)

- `t`: integer (or float) timesteps in [0, T), one per image; ignored when `time_conditioning=False`
  (the single-step denoiser).
- `cond`, for a class-conditional model (`num_classes > 0`): class ids `(B,)` in [0, num_classes]; the id
  `num_classes` is the *null class*, the unconditional branch of classifier-free guidance.
- `cond`, for a text-conditional model (`text_dim > 0`): token embeddings `(B, L, text_dim)` of the prompts
  (`difflab.text.PromptEmbedder`), all-zero rows for padding; an all-zero condition is the empty prompt,
  the unconditional branch. Cross-attention at `cross_attention_levels` (and the middle) reads the tokens;
  their mean also shifts the time embedding (FiLM), like a class embedding would.
- `cond=None` means unconditional for every image.

The constructor's keyword arguments are the model's whole configuration: `unet.spec` (a `ModelSpec`)
is saved next to the weights and `difflab.nn.spec.build(spec)` rebuilds it.
"""

from __future__ import annotations

import torch
from torch import nn

from difflab.errors import UserError
from difflab.nn.layers import (
    ATTENTION_HEADS,
    CrossAttention,
    Downsample,
    ResBlock,
    SelfAttention,
    Upsample,
    group_norm,
    sinusoidal_embedding,
)
from difflab.nn.spec import ModelSpec


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
        text_dim: int = 0,  # 0: no text; else the width of the prompt token embeddings (384 for MiniLM)
        cross_attention_levels: tuple[int, ...] = (),  # levels where pixels attend to the prompt (text only)
        prediction: str = "v",  # what the output is (the training objective); recorded in `spec`
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        attention_levels = tuple(int(i) for i in attention_levels)
        cross_attention_levels = tuple(int(i) for i in cross_attention_levels)
        halvings = len(channels) - 1
        step = 2 ** halvings  # the side must divide by this to halve once per level
        if image_size % step:
            near = max(step, round(image_size / step) * step)
            raise UserError(f"image size {image_size} px cannot be halved {halvings} times (one per level of --channels "
                            f"{','.join(map(str, channels))}); fix: --image-size a multiple of {step} (e.g. {near}), "
                            "or fewer --channels levels")
        if blocks_per_level < 1 or not channels or any(i >= len(channels) for i in attention_levels + cross_attention_levels):
            raise UserError(f"bad U-Net shape: channels={channels}, attention_levels={attention_levels}, "
                            f"cross_attention_levels={cross_attention_levels}; fix: levels are 0..{len(channels) - 1}, "
                            "one per width in --channels")
        attended = set(attention_levels) | (set(cross_attention_levels) if text_dim else set())
        if attention_levels or text_dim:
            attended.add(len(channels) - 1)  # the middle block attends too
        narrow = sorted({channels[i] for i in attended if channels[i] % ATTENTION_HEADS})
        if narrow:
            raise UserError(f"attention splits a width into {ATTENTION_HEADS} heads, and width(s) "
                            f"{', '.join(map(str, narrow))} of --channels {','.join(map(str, channels))} are not "
                            f"multiples of {ATTENTION_HEADS}; fix: multiples of {ATTENTION_HEADS} where attention sits "
                            "(e.g. 16,32,64), or no --attention-levels")
        if text_dim and num_classes:
            raise UserError("a U-Net is conditioned on classes or on text, not both; fix: num_classes=0 with text_dim")
        self.spec = ModelSpec(  # the whole configuration: saved in model.json, `build(spec)` rebuilds it
            in_channels=in_channels, image_size=image_size, channels=channels, blocks_per_level=blocks_per_level,
            attention_levels=attention_levels, num_classes=num_classes, time_conditioning=time_conditioning,
            dropout=dropout, groups=groups, text_dim=text_dim, cross_attention_levels=cross_attention_levels,
            prediction=prediction,
        )
        self.num_classes, self.text_dim = num_classes, text_dim
        emb_dim = 4 * channels[0] if (time_conditioning or num_classes or text_dim) else 0
        self._build_conditioning(self.spec, emb_dim)
        block = dict(emb_dim=emb_dim, groups=groups, dropout=dropout)
        cross = dict(context_dim=emb_dim, groups=groups)
        skip_widths = self._build_encoder(self.spec, block, cross)
        self._build_decoder(self.spec, block, cross, skip_widths)

    def _build_conditioning(self, spec: ModelSpec, emb_dim: int) -> None:
        """Time MLP, class embedding (with the null class) or the text projections, all of width `emb_dim`."""
        c0 = spec.channels[0]
        self.time_mlp = (
            nn.Sequential(nn.Linear(c0, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)) if spec.time_conditioning else None
        )
        self.class_emb = nn.Embedding(spec.num_classes + 1, emb_dim) if spec.num_classes else None
        if spec.text_dim:
            self.context_proj = nn.Sequential(nn.LayerNorm(spec.text_dim), nn.Linear(spec.text_dim, emb_dim))
            self.null_token = nn.Parameter(torch.zeros(1, 1, emb_dim))  # always attendable: the empty prompt's token
            self.null_pooled = nn.Parameter(torch.zeros(1, emb_dim))  # the empty prompt's FiLM input
            self.text_film = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, emb_dim))

    def _build_encoder(self, spec: ModelSpec, block: dict, cross: dict) -> list[int]:
        """The way down and the middle; returns the skip widths the way up consumes."""
        channels, groups = spec.channels, spec.groups
        self.conv_in = nn.Conv2d(spec.in_channels, channels[0], 3, padding=1)
        self.down = nn.ModuleList()
        c_prev, skip_widths = channels[0], []
        for c in channels:
            stage = nn.ModuleList()
            for _ in range(spec.blocks_per_level):
                stage.append(ResBlock(c_prev, c, **block))
                c_prev = c
                skip_widths.append(c)
            self.down.append(stage)
        self.downsample = nn.ModuleList(Downsample(c, c) for c in channels[:-1])
        self.down_attn = nn.ModuleDict({str(i): SelfAttention(channels[i], groups=groups) for i in spec.attention_levels})
        xlevels = spec.cross_attention_levels if spec.text_dim else ()
        self.down_xattn = nn.ModuleDict({str(i): CrossAttention(channels[i], **cross) for i in xlevels})
        self.mid_xattn = CrossAttention(channels[-1], **cross) if spec.text_dim else None
        self.mid1 = ResBlock(c_prev, c_prev, **block)
        self.mid_attn = SelfAttention(c_prev, groups=groups) if spec.attention_levels else nn.Identity()
        self.mid2 = ResBlock(c_prev, c_prev, **block)
        return skip_widths

    def _build_decoder(self, spec: ModelSpec, block: dict, cross: dict, skip_widths: list[int]) -> None:
        """The way up (mirroring the way down) and the zero-initialised output convolution."""
        channels, groups = spec.channels, spec.groups
        self.up = nn.ModuleList()
        c_prev = channels[-1]
        for level in reversed(range(len(channels))):
            stage = nn.ModuleList()
            for _ in range(spec.blocks_per_level):
                stage.append(ResBlock(c_prev + skip_widths.pop(), channels[level], **block))
                c_prev = channels[level]
            self.up.append(stage)
        self.upsample = nn.ModuleList(Upsample(c, c) for c in reversed(channels[1:]))
        self.up_attn = nn.ModuleDict({str(i): SelfAttention(channels[i], groups=groups) for i in spec.attention_levels})
        xlevels = spec.cross_attention_levels if spec.text_dim else ()
        self.up_xattn = nn.ModuleDict({str(i): CrossAttention(channels[i], **cross) for i in xlevels})
        self.norm_out = group_norm(channels[0], groups)
        self.conv_out = nn.Conv2d(channels[0], spec.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def embed(self, t: torch.Tensor | None, cond: torch.Tensor | None, batch: int, device):
        """`(emb, context)`: time + class/text embedding `(B, emb_dim)`, and for text models the tokens to
        attend to with their mask, `((B, 1 + L, emb_dim), (B, 1 + L))`, else None."""
        emb, context = None, None
        if self.time_mlp is not None:
            emb = self.time_mlp(sinusoidal_embedding(t, self.conv_in.out_channels))
        if self.class_emb is not None:
            if cond is None:
                cond = torch.full((batch,), self.num_classes, dtype=torch.long, device=device)
            emb = _add(emb, self.class_emb(cond))
        if self.text_dim:
            pooled, context = self.text_context(cond, batch, device)
            emb = _add(emb, self.text_film(pooled))
        return emb, context

    def text_context(self, cond: torch.Tensor | None, batch: int, device):
        """Pooled text `(B, E)` and `(tokens (B, 1 + L, E), mask (B, 1 + L))`, the learned null token first."""
        if cond is None:
            cond = torch.zeros(batch, 1, self.text_dim, device=device)
        if not cond.is_floating_point() or cond.ndim != 3 or cond.shape[-1] != self.text_dim:
            raise UserError(f"this U-Net is conditioned on text: cond must be prompt token embeddings "
                            f"(B, L, {self.text_dim}), got {cond.dtype} {tuple(cond.shape)}; fix: pass prompts, not labels")
        mask = cond.abs().amax(-1) > 0  # (B, L): padding and the empty prompt are all-zero rows
        tokens = self.context_proj(cond)  # (B, L, E)
        present = mask.any(1, keepdim=True)  # (B, 1)
        mean = (tokens * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (B, E)
        pooled = torch.where(present, mean, self.null_pooled)
        null = self.null_token.expand(cond.shape[0], 1, -1)
        keep = torch.cat([torch.ones_like(present), mask], 1)  # (B, 1 + L)
        return pooled, (torch.cat([null, tokens], 1), keep)

    def forward(self, x: torch.Tensor, t: torch.Tensor | None = None, cond: torch.Tensor | None = None) -> torch.Tensor:
        emb, context = self.embed(t, cond, x.shape[0], x.device)  # (B, emb_dim), text tokens or None
        h = self.conv_in(x)  # (B, c0, H, W)
        skips = []
        for level, stage in enumerate(self.down):
            for blk in stage:
                h = self._attend(blk(h, emb), level, self.down_attn, self.down_xattn, context)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)  # (B, c, H/2, W/2)
        h = self.mid_attn(self.mid1(h, emb))
        if self.mid_xattn is not None:
            h = self.mid_xattn(h, *context)
        h = self.mid2(h, emb)
        for i, stage in enumerate(self.up):
            level = len(self.up) - 1 - i
            for blk in stage:
                h = blk(torch.cat([h, skips.pop()], dim=1), emb)
                h = self._attend(h, level, self.up_attn, self.up_xattn, context)
            if i < len(self.upsample):
                h = self.upsample[i](h)  # (B, c, 2H, 2W)
        return self.conv_out(torch.nn.functional.silu(self.norm_out(h)))  # (B, C, H, W)

    @staticmethod
    def _attend(h, level: int, self_attn: nn.ModuleDict, cross_attn: nn.ModuleDict, context) -> torch.Tensor:
        key = str(level)
        if key in self_attn:
            h = self_attn[key](h)
        if key in cross_attn:
            h = cross_attn[key](h, *context)
        return h


def _add(a: torch.Tensor | None, b: torch.Tensor) -> torch.Tensor:
    return b if a is None else a + b

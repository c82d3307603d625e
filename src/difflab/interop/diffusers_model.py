"""`DifflabUNet2DModel`: difflab's U-Net as a diffusers model (`ModelMixin` + `ConfigMixin`).

Our U-Net is not a `diffusers.UNet2DModel`: its residual blocks take FiLM (scale, shift) from the
time + class embedding, where diffusers' blocks add a bias ("default") or use different layer names
and norms. Rather than a lossy translation, this class wraps the same module, so weights load
exactly and `from_pretrained` / `save_pretrained` / diffusers schedulers and pipelines work:

    from difflab.interop.diffusers_model import DifflabUNet2DModel  # diffusers needs it imported
    unet = DifflabUNet2DModel.from_pretrained("exported/unet")
    eps_or_v = unet(x_t, t, class_labels=labels).sample

Class ids are 0..num_classes-1; `num_classes` (or `class_labels=None`) is the null class of CFG.
"""

from __future__ import annotations

import logging

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.unets.unet_2d import UNet2DOutput

from difflab.nn.unet import UNet


class _DuckTypedUNet(logging.Filter):
    """Drops diffusers' "Expected types for unet: UNet2DModel, got DifflabUNet2DModel" and nothing else.

    The pipelines annotate `unet: UNet2DModel` but only use what this class has (`config.sample_size`,
    `config.in_channels`, `.sample`); our FiLM U-Net cannot be a `UNet2DModel`, so the mismatch is by
    design and the warning, printed on every `DiffusionPipeline.from_pretrained`, says nothing to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("Expected types for unet") and "DifflabUNet2DModel" in message)


def _quiet_type_check() -> None:
    log = logging.getLogger("diffusers.pipelines.pipeline_utils")
    if not any(isinstance(f, _DuckTypedUNet) for f in log.filters):
        log.addFilter(_DuckTypedUNet())


class DifflabUNet2DModel(ModelMixin, ConfigMixin):
    """difflab's FiLM U-Net behind diffusers' model interface (`.sample` output, config.json)."""

    config_name = "config.json"

    @register_to_config
    def __init__(self, in_channels: int = 1, image_size: int = 28, channels: tuple[int, ...] = (32, 64, 128),
                 blocks_per_level: int = 1, attention_levels: tuple[int, ...] = (), num_classes: int = 10,
                 time_conditioning: bool = True, dropout: float = 0.0, groups: int = 8,
                 prediction_type: str = "v_prediction",  # what the output is; the scheduler must agree
                 sample_size: int | None = None,  # = image_size; the name diffusers' pipelines read
                 text_dim: int = 0, cross_attention_levels: tuple[int, ...] = ()):  # text runs (prompt embeddings)
        super().__init__()
        if sample_size is None:
            self.register_to_config(sample_size=image_size)
        self.unet = UNet(in_channels=in_channels, image_size=image_size, channels=tuple(channels),
                         blocks_per_level=blocks_per_level, attention_levels=tuple(attention_levels),
                         num_classes=num_classes, time_conditioning=time_conditioning, dropout=dropout,
                         groups=groups, text_dim=text_dim, cross_attention_levels=tuple(cross_attention_levels))

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """diffusers' loader; `low_cpu_mem_usage` defaults to whether accelerate is installed (diffusers
        defaults it to True and then warns, on every load without accelerate, that it used False)."""
        from diffusers.utils import is_accelerate_available

        kwargs.setdefault("low_cpu_mem_usage", is_accelerate_available())
        return super().from_pretrained(*args, **kwargs)

    def forward(self, sample: torch.Tensor, timestep, class_labels: torch.Tensor | None = None,
                return_dict: bool = True, encoder_hidden_states: torch.Tensor | None = None):
        """`(B, C, H, W)`, a scalar or `(B,)` timestep, optional `(B,)` class ids or, for a text run,
        `encoder_hidden_states` `(B, L, text_dim)` prompt embeddings (zeros = the empty prompt) -> `.sample`."""
        t = torch.as_tensor(timestep, device=sample.device)
        t = t.expand(sample.shape[0]) if t.ndim == 0 else t  # (B,)
        out = self.unet(sample, t, encoder_hidden_states if self.unet.text_dim else class_labels)
        return UNet2DOutput(sample=out) if return_dict else (out,)


_quiet_type_check()  # on import: diffusers only loads this class once this module is imported

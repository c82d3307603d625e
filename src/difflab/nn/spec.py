"""`ModelSpec` and `Denoiser`: what network a run holds, and the one contract every sampler relies on.

    model(x_t, t, cond) -> prediction      # (B, C, H, W), (B,), cond -> (B, C, H, W)
    model.spec.prediction                  # what the output is: "eps" | "x0" | "v" | "denoise"

`ModelSpec` is frozen, saved in the run's model.json (through `RunFolder`) with a version number,
and turned into a module by a factory (`build_unet` by default). A benchmark or a user passes
another factory — any `nn.Module` with the `Denoiser` signature — without touching difflab.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from difflab.errors import UserError

SPEC_VERSION = 1  # bump when a field changes meaning; older files are read, newer ones refused
PREDICTIONS = ("eps", "x0", "v", "denoise")  # denoise: x̂₀ of x + σε at one fixed σ, time-free (not samplable)


@dataclass(frozen=True)
class ModelSpec:
    """The network's whole configuration: the U-Net's constructor arguments and what it predicts."""

    in_channels: int = 1  # 1 for MNIST-like, 3 for CIFAR/RGB folders
    image_size: int = 28  # must be divisible by 2**(len(channels)-1)
    channels: tuple[int, ...] = (16, 32, 64)  # widths per resolution level: 28 -> 14 -> 7 px
    blocks_per_level: int = 1  # residual blocks per level on the way down (the way up mirrors it)
    attention_levels: tuple[int, ...] = ()  # level indices with self-attention
    num_classes: int = 10  # 0: unconditional (or text); else a class embedding with a null class for CFG
    time_conditioning: bool = True  # False: a single-step denoiser that never sees t
    dropout: float = 0.0
    groups: int = 8  # GroupNorm groups (reduced to gcd with the width)
    text_dim: int = 0  # 0: no text; else the width of the prompt token embeddings (384 for MiniLM)
    cross_attention_levels: tuple[int, ...] = ()  # levels where pixels attend to the prompt (text only)
    prediction: str = "v"  # the training objective: what the network's output is
    version: int = SPEC_VERSION

    def __post_init__(self) -> None:
        for name in ("channels", "attention_levels", "cross_attention_levels"):
            object.__setattr__(self, name, tuple(int(c) for c in getattr(self, name)))
        if self.prediction not in PREDICTIONS:
            raise UserError(f"unknown prediction {self.prediction!r}; use one of {', '.join(PREDICTIONS)}")
        if self.version > SPEC_VERSION:
            raise UserError(f"model spec version {self.version} is newer than this difflab reads ({SPEC_VERSION}); "
                            "fix: upgrade difflab")

    @property
    def is_text(self) -> bool:
        return self.text_dim > 0

    @property
    def samplable(self) -> bool:
        """A diffusion model (ε̂ at every t); the single-step denoiser is not."""
        return self.prediction != "denoise"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.in_channels, self.image_size, self.image_size)

    def network_kwargs(self) -> dict:
        """The U-Net constructor's keyword arguments."""
        return {k: v for k, v in self.to_dict().items() if k not in ("prediction", "version")}

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes) -> ModelSpec:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data, *, source: str = "model spec", prediction: str | None = None) -> ModelSpec:
        """Validate and build; `prediction` fills in the field for files written before it existed."""
        if not isinstance(data, dict):
            raise UserError(f"{source} does not describe a difflab model (no \"model\" object); fix: an intact run folder")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{source}: unknown model field(s) {', '.join(unknown)}; fix: a newer difflab, or an intact file")
        data = dict(data)
        if prediction is not None:
            data.setdefault("prediction", prediction)
        try:
            return cls(**data)
        except (TypeError, ValueError) as err:
            if isinstance(err, UserError):
                raise UserError(f"{source}: {err}") from None
            raise UserError(f"{source} does not describe a difflab model ({err})") from None


@runtime_checkable
class Denoiser(Protocol):
    """What every sampler, editor and explainer calls: `model(x_t, t, cond)` with `model.spec`."""

    spec: ModelSpec

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor: ...


ModelFactory = Callable[[ModelSpec], torch.nn.Module]


def build_unet(spec: ModelSpec) -> torch.nn.Module:
    """The default factory: difflab's FiLM U-Net for `spec`."""
    from difflab.nn.unet import UNet

    return UNet(**spec.network_kwargs(), prediction=spec.prediction)


def build(spec: ModelSpec, factory: ModelFactory | None = None) -> torch.nn.Module:
    """`factory(spec)` (the U-Net by default), with `spec` attached so it meets the `Denoiser` contract."""
    model = (factory or build_unet)(spec)
    if getattr(model, "spec", None) != spec:
        model.spec = spec  # a user's network need not know about specs
    return model


__all__ = ["PREDICTIONS", "Denoiser", "ModelFactory", "ModelSpec", "build", "build_unet"]

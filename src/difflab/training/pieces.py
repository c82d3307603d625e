"""The pieces one run is built from its config: data, conditioning, the network, its EMA, AdamW, the schedule.

Kept apart from the Trainer so the loop's module holds the loop only; the order is fixed (data first, then the
seeded network), so a run's weights depend on its config and seed alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from difflab.data import ImageDataset, load_dataset
from difflab.diffusion import NoiseSchedule
from difflab.errors import UserError
from difflab.nn.spec import ModelFactory, build
from difflab.training import distributed
from difflab.training.conditioning import TextConditioning, make_conditioning
from difflab.training.config import TrainConfig
from difflab.training.ema import EMA


@dataclass
class Pieces:
    data: ImageDataset
    conditioning: object  # training/conditioning.py: class labels or text embeddings
    class_prompts: list[str] | None  # text runs: what `--label k` means, per class
    model: torch.nn.Module  # the network whose weights are saved
    ema: EMA
    net: torch.nn.Module  # what the forward pass goes through: DDP with many processes, compiled when asked
    optimizer: torch.optim.Optimizer
    alphas_cumprod: torch.Tensor


def build_pieces(c: TrainConfig, device: torch.device, model_factory: ModelFactory | None = None) -> Pieces:
    """Data, conditioning, the network (from `model_factory`, else difflab's U-Net), its EMA and AdamW."""
    data = load_dataset(c.dataset, data_dir=c.data_dir, image_size=c.image_size)
    _, h, w = data.image_shape
    if h != w:
        raise UserError(f"{c.dataset}: images must be square, got {h}x{w}; fix: --image-size N")
    conditioning = make_conditioning(c.conditioning, data, conditional=c.conditional, encoder=c.text_encoder,
                                     device=device)
    prompts = conditioning.class_prompts(data) if isinstance(conditioning, TextConditioning) else None
    torch.manual_seed(c.seed)
    spec = c.model_spec(data.image_shape, data.num_classes, text_dim=getattr(conditioning, "text_dim", 0))
    model = build(spec, model_factory).to(device)
    ema = EMA(model, c.ema_decay)
    net = distributed.wrap(model)
    if c.compile:
        net = torch.compile(net)  # the saved weights stay those of `model` (no `_orig_mod.`)
    optimizer = torch.optim.AdamW(  # fused: one kernel, and `found_inf` lets the device skip a step
        model.parameters(), lr=c.lr, weight_decay=c.weight_decay, fused=True)
    alphas_cumprod = NoiseSchedule(c.schedule, c.num_timesteps).alphas_cumprod.to(device)
    return Pieces(data, conditioning, prompts, model, ema, net, optimizer, alphas_cumprod)

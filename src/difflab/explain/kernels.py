"""What the layers compute: the first layer's filters, and a chosen layer's activation maps.

Visualising first-layer filters and feature maps is the oldest look inside a CNN (Zeiler & Fergus
2014); in a denoiser the input is a noisy image, so the maps are shown for a digit noised to `t`.
"""

from __future__ import annotations

import torch

from difflab.diffusion import q_sample
from difflab.errors import UserError
from difflab.explain.trajectories import cond_values, find_module


def first_filters(model: torch.nn.Module) -> torch.Tensor:
    """`conv_in` weights `(c0, C_in, k, k)`: the filters every image meets first."""
    return model.conv_in.weight.detach().cpu()


@torch.no_grad()
def activations(run, layer: str, image: torch.Tensor, t: int, label: int | None, *, seed: int = 0) -> dict:
    """The image noised to `t` (t = 0: as is) and `layer`'s output on it, `(c, h, w)`."""
    if not 0 <= t < len(run.alphas_cumprod):
        raise UserError(f"--t {t} is outside 0..{len(run.alphas_cumprod) - 1}; fix: pick a timestep in that range")
    module = find_module(run.model, layer)
    tt = torch.full((1,), t, dtype=torch.long)
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(seed + 1))
    x = image if t == 0 else q_sample(image, tt, noise, run.alphas_cumprod)  # (1, C, H, W)
    kept: list[torch.Tensor] = []
    hook = module.register_forward_hook(lambda _, __, out: kept.append(out.detach().cpu()))
    try:
        device = next(run.model.parameters()).device
        cond = cond_values(run, torch.tensor([label]) if label is not None else None, device)
        run.model(x.to(device), tt.to(device), cond)
    finally:
        hook.remove()
    if not kept or kept[0].ndim != 4:
        raise UserError(f"layer {layer!r} has no image-shaped output; fix: pick a convolution or block")
    maps = kept[0][0]  # (c, h, w)
    return dict(input=x, maps=maps, layer=layer, t=t,
                channel_mean=maps.mean((1, 2)).tolist(), channel_max=maps.amax((1, 2)).tolist())

"""The training losses: `loss(x0, idx)` draws timesteps, noise and CFG label dropout from the loop's
generator and returns the MSE of the network's prediction against the objective's target."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from difflab import precision
from difflab.diffusion import q_sample, target
from difflab.training import distributed
from difflab.training.config import DENOISE, TrainConfig


class DiffusionLoss:
    """The diffusion objective (eps, x0 or v), or for `objective="denoise"` the single-step denoiser's L2.

    `net` is what the forward pass goes through (DDP, compiled); the forward runs under the run's precision
    (bf16 autocast or none); the loss and everything after it stay fp32."""

    def __init__(self, config: TrainConfig, net: torch.nn.Module, conditioning, alphas_cumprod: torch.Tensor,
                 draws: torch.Generator, precision_name: str, device: torch.device) -> None:
        self.config, self.net, self.conditioning, self.alphas_cumprod = config, net, conditioning, alphas_cumprod
        self.draws, self.precision, self.device = draws, precision_name, device

    def autocast(self) -> torch.autocast:
        return precision.autocast(self.precision, self.device)

    def __call__(self, x0: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        c, g, b = self.config, self.draws, x0.shape[0]
        if c.objective == DENOISE:
            return self.denoise(x0)
        t = torch.randint(0, c.num_timesteps, (b,), generator=g, device=g.device)
        noise = torch.randn(x0.shape, generator=g, device=g.device)  # (B, C, H, W)
        drop = torch.rand(b, generator=g, device=g.device) < c.cond_dropout  # (B,) CFG: these see the null branch
        cond = self.conditioning.batch(idx, drop, g) if self.conditioning else None
        x0, t, noise, cond = distributed.shard(x0, t, noise, cond)  # this rank's rows of the global batch
        with self.autocast():
            prediction = self.net(q_sample(x0, t, noise, self.alphas_cumprod), t, cond)
        goal = target(c.objective, x0, noise, t, self.alphas_cumprod)
        if not c.min_snr:
            return F.mse_loss(prediction.float(), goal)
        per_image = (prediction.float() - goal).pow(2).flatten(1).mean(1)  # (B,)
        return (per_image * min_snr_weight(c.objective, self.alphas_cumprod[t], c.min_snr)).mean()

    def denoise(self, x0: torch.Tensor) -> torch.Tensor:
        """The single-step denoiser: L2 between D(x + sigma*eps) and x, one fixed sigma, t unused."""
        g = self.draws
        noise = torch.randn(x0.shape, generator=g, device=g.device)  # (B, C, H, W)
        t = torch.zeros(x0.shape[0], dtype=torch.long, device=self.device)  # ignored by the model
        cond = self.conditioning.null(x0.shape[0]) if self.conditioning else None  # null branch: unconditional
        x0, t, noise, cond = distributed.shard(x0, t, noise, cond)  # this rank's rows of the global batch
        with self.autocast():
            prediction = self.net(x0 + self.config.sigma * noise, t, cond)
        return F.mse_loss(prediction.float(), x0)


def min_snr_weight(objective: str, alphas_cumprod: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ loss weights (Hang et al. 2023): the x₀ error weighted by min(SNR, γ), written for each
    objective's own loss (‖δx₀‖² = ‖δε‖²/SNR = ‖δv‖²/(SNR+1)); the easy low-noise steps stop dominating."""
    snr = alphas_cumprod / (1 - alphas_cumprod)
    clipped = snr.clamp(max=gamma)
    return {"eps": clipped / snr, "x0": clipped, "v": clipped / (snr + 1)}[objective]


__all__ = ["DiffusionLoss", "min_snr_weight"]

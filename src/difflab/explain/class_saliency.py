"""Conditioned-sampling saliency: where, and because of which input pixels, the class changes ε̂.

Classifier-free guidance (Ho & Salimans 2022) steers with ε_u + w (ε_c − ε_u), so the class acts
only through the difference d = ε_c − ε_u. Per pixel, |d| is where the class pushes the image; the
integrated-gradients attribution (Sundararajan et al. 2017) of ⟨d(x), u⟩, u = d(x*)/‖d(x*)‖ fixed,
says which pixels of x_t make that push (a linear read-out, so completeness holds).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from difflab import progress
from difflab.diffusion import to_eps
from difflab.errors import UserError
from difflab.explain.attribution import attribute, completeness, ink_mask
from difflab.explain.trajectories import cond_values
from difflab.sampling import null_of


@dataclass
class GuidanceDirection:
    """`g(x) -> (B,)`: ⟨ε_c(x) − ε_u(x), u⟩, Captum's forward_func."""

    model: torch.nn.Module
    objective: str
    alphas_cumprod: torch.Tensor
    null: int  # the null class id
    direction: torch.Tensor | None = None  # (B, C, H, W) unit u; None while measuring d itself

    def difference(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """d = ε_c − ε_u, `(B, C, H, W)`, both branches in one batched forward."""
        null = null_of(cond, self.null)  # null class id, or the empty prompt of a text run
        pred = self.model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, null]))
        eps = to_eps(self.objective, pred, torch.cat([x, x]), torch.cat([t, t]), self.alphas_cumprod)
        eps_c, eps_u = eps.chunk(2)
        return eps_c - eps_u

    def __call__(self, x, t, cond):
        u = self.direction.repeat(x.shape[0] // self.direction.shape[0], 1, 1, 1)
        return (self.difference(x, t, cond) * u).flatten(1).sum(1)


def class_saliency(run, traj, *, ig_steps: int = 64) -> list[dict]:
    """Per snapped timestep: x_t, |ε_c − ε_u| `(1, 1, H, W)`, its IG attribution and the numbers."""
    if traj.labels is None:
        raise UserError("class-saliency needs a class-conditional run; this run is unconditional")
    device = next(run.model.parameters()).device
    g = GuidanceDirection(run.model, run.spec.prediction, run.alphas_cumprod.to(device), run.spec.num_classes)
    cond = cond_values(run, traj.labels[:1], device)  # a text run: the class's first caption
    ink = ink_mask(traj.final[:1])  # (1, C, H, W) where the picture ends up
    rows = []
    shown = progress.bar(len(traj.actual), "explain: class saliency", unit="step")
    for asked, t in zip(traj.requested, traj.actual):
        x = traj.xt[t][:1].to(device)  # (1, C, H, W) the live x_t
        tt = torch.full((1,), t, dtype=torch.long, device=device)
        with torch.no_grad():
            d = g.difference(x, tt, cond)
        g.direction = d / d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        maps, delta = attribute(g, "integrated-gradients", x, tt, cond, ig_steps=ig_steps)
        size = d.abs().sum(1, keepdim=True).cpu()  # (1, 1, H, W)
        rows.append(dict(requested_t=asked, t=t, input=x.cpu(), difference=size, map=maps.cpu(),
                         mean_abs_difference=float(size.mean()),
                         difference_on_ink=float((size * ink[:, :1]).sum() / size.sum().clamp_min(1e-12)),
                         ink_fraction=float(ink.mean()), convergence_delta=float(delta.abs().max()),
                         **completeness(g, x, tt, cond, maps)))
        shown.update()
    shown.close()
    return rows

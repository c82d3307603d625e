"""Captum attributions of a scalar read off the U-Net's output (saliency, integrated gradients, Grad-CAM).

The network outputs an image, so each method explains one *scalar* per image (choose with `target`):

- `eps-proj`: the projection of the predicted noise ε̂(x, t, c) on its own unit direction at the
  explained input, ⟨ε̂(x), u⟩ with u = ε̂(x*)/‖ε̂(x*)‖ held fixed — "how much of what the model calls
  noise does each pixel drive";
- `x0-ink`: the mean predicted clean image x̂₀(x, t, c) over the final image's ink (`ink_mask`: pixels
  far from its background — a digit's strokes, an emoji's glyph on white) — "which input pixels draw the
  picture".

Both are linear read-outs of the output, so integrated gradients (Sundararajan et al. 2017) satisfies
completeness exactly up to the quadrature error that Captum reports as the convergence delta.
The baseline is the blank canvas, every pixel −1 (black, the MNIST background; the black image of
Sundararajan et al. sec. 3). The mid-grey zero image is a poor baseline here: next to it the input is
smaller than the convolution biases and GroupNorm makes the read-out swing, so 64 steps left a delta of
~7% of f(x) − f(0) on a small U-Net, against ~0 from −1.
Grad-CAM (Selvaraju et al. 2017) weights a layer's activations by their mean gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

from difflab import progress
from difflab.diffusion import to_eps, to_x0
from difflab.errors import UserError
from difflab.explain.trajectories import cond_values, find_module

TARGETS = ("eps-proj", "x0-ink")
BASELINE = -1.0  # integrated gradients start from the blank (black) canvas
INK = 1.0  # a pixel is ink when some channel lies more than this from the background (half of [-1, 1]): on
# black-background digits exactly the old `final > 0`
METHODS = ("saliency", "integrated-gradients", "grad-cam")


def last_decoder_conv(model: torch.nn.Module) -> str:
    """`up.<last stage>.<last block>.conv2`: the last convolution before the output head."""
    stage = len(model.up) - 1
    return f"up.{stage}.{len(model.up[stage]) - 1}.conv2"


@dataclass
class ScalarOutput:
    """`f(x) -> (B,)`: a scalar read-out of the denoiser at fixed `t`, `cond` (Captum's forward_func)."""

    model: torch.nn.Module
    objective: str
    alphas_cumprod: torch.Tensor
    target: str
    reference: torch.Tensor  # (B, C, H, W): u for eps-proj, the ink mask for x0-ink

    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        pred = self.model(x, t, cond)  # (B', C, H, W); Captum may repeat the batch (IG steps)
        ref = self.reference.repeat(x.shape[0] // self.reference.shape[0], 1, 1, 1)
        if self.target == "eps-proj":
            return (to_eps(self.objective, pred, x, t, self.alphas_cumprod) * ref).flatten(1).sum(1)
        x0 = to_x0(self.objective, pred, x, t, self.alphas_cumprod)
        return (x0 * ref).flatten(1).sum(1) / ref.flatten(1).sum(1).clamp_min(1.0)


@torch.no_grad()
def scalar_output(run, target: str, x: torch.Tensor, t: torch.Tensor, cond, final: torch.Tensor) -> ScalarOutput:
    """Build the read-out for explained inputs `x` (B, C, H, W) whose trajectories end in `final`."""
    if target not in TARGETS:
        raise UserError(f"--target {target!r} is unknown; fix: use one of {', '.join(TARGETS)}")
    abar = run.alphas_cumprod.to(x.device)
    if target == "x0-ink":
        reference = ink_mask(final)  # (B, C, H, W) where the picture ends up
    else:
        eps = to_eps(run.spec.prediction, run.model(x, t, cond), x, t, abar)
        reference = eps / eps.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return ScalarOutput(run.model, run.spec.prediction, abar, target, reference)


def ink_mask(final: torch.Tensor) -> torch.Tensor:
    """`(B, C, H, W)` 1 where a finished image differs from its own background, else 0. The background is the
    per-channel median of the image's border, so white-on-black digits and emoji on white both work."""
    border = torch.cat([final[..., 0, :], final[..., -1, :], final[..., :, 0], final[..., :, -1]], dim=-1)
    background = border.median(dim=-1).values[..., None, None]  # (B, C, 1, 1)
    drawn = (final - background).abs().amax(dim=1, keepdim=True) > INK  # (B, 1, H, W)
    return drawn.float().expand_as(final).contiguous()


def attribute(f, method: str, x: torch.Tensor, t: torch.Tensor, cond, *, layer: str | None = None,
              ig_steps: int = 64) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attribution `(B, 1, H, W)` (summed over channels) and, for IG, Captum's convergence delta `(B,)`."""
    args = (t, cond)
    x = x.detach().clone().requires_grad_(True)
    if method == "saliency":
        maps, delta = Saliency(f).attribute(x, abs=True, additional_forward_args=args), None
    elif method == "integrated-gradients":
        maps, delta = IntegratedGradients(f).attribute(
            x, baselines=torch.full_like(x, BASELINE), additional_forward_args=args, n_steps=ig_steps,
            internal_batch_size=len(x) * 16, return_convergence_delta=True)
    elif method == "grad-cam":
        model = f.model if isinstance(f, ScalarOutput) else f
        cam = LayerGradCam(f, find_module(model, layer or last_decoder_conv(model))).attribute(
            x, additional_forward_args=args, relu_attributions=True)  # (B, 1, h, w)
        maps, delta = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear"), None
    else:
        raise UserError(f"--method {method!r} is unknown; fix: use one of {', '.join(METHODS)} or all")
    return maps.detach().sum(1, keepdim=True), (delta.detach() if delta is not None else None)


def completeness(f, x: torch.Tensor, t, cond, maps: torch.Tensor) -> dict:
    """Sum of IG attributions against f(x) − f(baseline): equal when the path integral converged."""
    with torch.no_grad():
        gap = f(x, t, cond) - f(torch.full_like(x, BASELINE), t, cond)  # (B,)
    total = maps.flatten(1).sum(1)
    return dict(f_x_minus_f_baseline=gap.tolist(), sum_of_attributions=total.tolist(),
                max_abs_error=float((total - gap).abs().max()))


def starting_noise(run, seed: int) -> torch.Tensor:
    """x_T of the first image sampled with `seed`: what `Run.sample` draws first, `(1, C, H, W)`."""
    shape = (1, *run.spec.image_shape)
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def attribute_over_time(run, traj, methods: list[str], *, noise: str = "live", target: str = "eps-proj",
                        layer: str | None = None, seed: int = 0) -> list[dict]:
    """For each snapped timestep and method: the input, the map and the numbers (IG: delta, completeness).

    `live` explains the x_t met while denoising; `constant` feeds the trajectory's starting noise x_T
    at every timestep, so only t (and the model's reading of it) changes.
    """
    if noise not in ("live", "constant"):
        raise UserError(f"--noise {noise!r} is unknown; fix: use live or constant")
    device = next(run.model.parameters()).device
    cond = cond_values(run, traj.labels[:1] if traj.labels is not None else None, device)
    final = traj.final[:1].to(device)
    rows = []
    shown = progress.bar(len(traj.actual) * len(methods), "explain: attributions", unit="map")
    for asked, t in zip(traj.requested, traj.actual):
        x = (traj.xt[t][:1] if noise == "live" else starting_noise(run, seed)).to(device)  # (1, C, H, W)
        tt = torch.full((1,), t, dtype=torch.long, device=device)
        f = scalar_output(run, target, x, tt, cond, final)
        for method in methods:
            maps, delta = attribute(f, method, x, tt, cond, layer=layer)
            row = dict(requested_t=asked, t=t, method=method, input=x.cpu(), map=maps.cpu(),
                       value=float(f(x, tt, cond).detach()))
            if delta is not None:
                row.update(convergence_delta=float(delta.abs().max()), **completeness(f, x, tt, cond, maps))
            rows.append(row)
            shown.update()
    shown.close()
    return rows

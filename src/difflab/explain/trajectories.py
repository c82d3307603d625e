"""Observe real sampling trajectories: x_t, x̂₀ and U-Net features at chosen timesteps.

The sampler's callback (`difflab.diffusion.sampling.Step`) gives x̂₀ after each step; forward hooks on
the model give the x_t it was fed and any layer's output (the bottleneck `mid2` by default), so no
sampling code is duplicated. Requested timesteps are *snapped* to the nearest step the solver visits
(DPM-Solver++ with 10 trailing steps visits 999, 899, ..., 99) and the actual t is recorded; the
requested t = 0 means the clean end: the final image, with features from one forward at t = 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from difflab import progress
from difflab.errors import UserError

CLEAN = 0  # the requested timestep that means "the final, clean image"
BOTTLENECK = "mid2"  # the last module of the U-Net's lowest resolution


@dataclass
class Trajectory:
    """What was seen at each snapped timestep: `{t: (N, ...)}` per quantity; `t = 0` is the clean end."""

    labels: torch.Tensor | None  # (N,) class ids the run was conditioned on (None: unconditional)
    final: torch.Tensor  # (N, C, H, W) the sampled images
    requested: list[int]  # the user's timesteps
    actual: list[int]  # the snapped timesteps, same order
    xt: dict[int, torch.Tensor] = field(default_factory=dict)  # (N, C, H, W)
    x0: dict[int, torch.Tensor] = field(default_factory=dict)  # (N, C, H, W)
    features: dict[int, torch.Tensor] = field(default_factory=dict)  # (N, c, h, w)


def snap(requested: list[int], visited: list[int], num_timesteps: int) -> list[int]:
    """Each requested t → the nearest visited step (ties: the noisier one); 0 stays 0 (clean end)."""
    if not requested:
        raise UserError("no timesteps given; fix: e.g. --timesteps 999,500,0")
    bad = [t for t in requested if not 0 <= t < num_timesteps]
    if bad:
        raise UserError(f"timestep {bad[0]} is outside 0..{num_timesteps - 1}; fix: pick timesteps in that range")
    return [CLEAN if t == CLEAN else min(visited, key=lambda v: (abs(v - t), -v)) for t in requested]


def find_module(model: torch.nn.Module, name: str) -> torch.nn.Module:
    """A sub-module by its `named_modules()` path, or a UserError listing a few valid names."""
    modules = dict(model.named_modules())
    if name not in modules or not name:
        convs = [n for n, m in modules.items() if isinstance(m, torch.nn.Conv2d)]
        raise UserError(f"no layer named {name!r}; fix: use a named_modules() path such as {', '.join(convs[-3:])}")
    return modules[name]


def cond_values(run, labels: torch.Tensor | None, device) -> torch.Tensor | None:
    """The network's `cond` for `labels`: class ids, or a text run's prompt embeddings; None: unconditional."""
    return None if labels is None else run.condition(labels=labels).values.to(device)


def collect(run, labels: torch.Tensor | None, *, timesteps: list[int], n: int | None = None, seed: int = 0,
            layer: str = BOTTLENECK, settings: dict | None = None) -> Trajectory:
    """Sample with the run's sampler (`settings` override it) and keep x_t, x̂₀, features at `timesteps`."""
    settings = dict(settings or {})
    visited = run.sampler(**settings).timesteps(len(run.alphas_cumprod))
    actual = snap(list(timesteps), visited, len(run.alphas_cumprod))
    wanted = set(actual) - {CLEAN}
    seen_x: list[torch.Tensor] = []  # model inputs of the current step, in call order
    seen_f: list[torch.Tensor] = []
    parts: dict[str, dict[int, list[torch.Tensor]]] = {"xt": {}, "x0": {}, "features": {}}

    def on_input(_, args):
        if int(args[1][0]) in wanted:
            seen_x.append(args[0].detach().cpu())

    def on_layer(_, __, out):
        if seen_x and len(seen_f) < len(seen_x):
            seen_f.append(out.detach().float().cpu())

    def on_step(_, step):
        if step.t in wanted:
            b = step.x.shape[0]  # with CFG the model saw [cond; null]: the first b rows are the cond branch
            parts["xt"].setdefault(step.t, []).append(torch.cat(seen_x)[:b])
            parts["features"].setdefault(step.t, []).append(torch.cat(seen_f)[:b])
            parts["x0"].setdefault(step.t, []).append(step.x0.detach().cpu())
        seen_x.clear(), seen_f.clear()

    hooks = [run.model.register_forward_pre_hook(on_input), find_module(run.model, layer).register_forward_hook(on_layer)]
    count = len(labels) if labels is not None else n
    try:
        with progress.stage(f"explain: sampling {count} trajector{'y' if count == 1 else 'ies'}"):
            final = run.sample(labels, n=n, seed=seed, callback=on_step, **settings)
    finally:
        for h in hooks:
            h.remove()
    traj = Trajectory(labels, final, list(timesteps), actual)
    for key, per_t in parts.items():
        getattr(traj, key).update({t: torch.cat(v) for t, v in per_t.items()})
    if CLEAN in actual:
        _add_clean_end(run, traj, layer)
    return traj


@torch.no_grad()
def _add_clean_end(run, traj: Trajectory, layer: str) -> None:
    """t = 0: x_t = x̂₀ = the final image; features from one conditional forward at t = 0."""
    traj.xt[CLEAN] = traj.x0[CLEAN] = traj.final
    kept: list[torch.Tensor] = []
    hook = find_module(run.model, layer).register_forward_hook(lambda _, __, out: kept.append(out.detach().cpu()))
    device = next(run.model.parameters()).device
    try:
        for i in range(0, len(traj.final), 250):
            x = traj.final[i : i + 250].to(device)
            cond = cond_values(run, traj.labels[i : i + 250] if traj.labels is not None else None, device)
            run.model(x, torch.zeros(len(x), dtype=torch.long, device=device), cond)
    finally:
        hook.remove()
    traj.features[CLEAN] = torch.cat(kept).float()

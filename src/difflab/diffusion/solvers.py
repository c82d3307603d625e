"""Solvers: one reverse-process update each, behind one signature.

`solver.step(x_t, t, t_next, eps, generator=...) -> (x_next, x0_hat)` moves from timestep `t` to
`t_next` (`-1` means the clean end, ᾱ = 1) given the noise estimate ε̂(x_t, t). The one sampling loop
(`difflab.diffusion.sampling.sample`) owns the timesteps, the hooks and the callback; solvers only
do arithmetic. Each is tested against diffusers' scheduler of the same name.
"""

from __future__ import annotations

import torch

from difflab.errors import UserError

SOLVERS = ("ddpm", "ddim", "dpm++")


class Solver:
    """Base: ᾱ lookup and the clean-image estimate shared by every solver."""

    def __init__(self, alphas_cumprod: torch.Tensor, *, clip_x0: bool = True) -> None:
        self.alphas_cumprod = alphas_cumprod.double()
        self.clip_x0 = clip_x0  # images live in [-1, 1]; clipping x̂₀ there steadies few-step sampling

    def abar(self, t: int) -> float:
        return 1.0 if t < 0 else float(self.alphas_cumprod[t])

    def predict_x0(self, x: torch.Tensor, t: int, eps: torch.Tensor) -> torch.Tensor:
        a = self.abar(t)
        x0 = (x - (1 - a) ** 0.5 * eps) / a**0.5
        return x0.clamp(-1, 1) if self.clip_x0 else x0

    def step(self, x, t: int, t_next: int, eps, *, generator=None):  # pragma: no cover - interface
        raise NotImplementedError


def _randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Noise drawn on the generator's device, so a seed gives the same images on CPU and GPU."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


class DDPM(Solver):
    """Ancestral sampling (Ho et al. 2020, eq. 6-7) with the posterior variance β̃; any stride."""

    def step(self, x, t, t_next, eps, *, generator=None):
        a_t, a_prev = self.abar(t), self.abar(t_next)
        alpha_t = a_t / a_prev  # one "step" of the strided chain
        beta_t = 1 - alpha_t
        x0 = self.predict_x0(x, t, eps)
        mean = (a_prev**0.5 * beta_t / (1 - a_t)) * x0 + (alpha_t**0.5 * (1 - a_prev) / (1 - a_t)) * x
        variance = max((1 - a_prev) / (1 - a_t) * beta_t, 1e-20)
        if t_next < 0 or t == 0:
            return mean, x0
        return mean + variance**0.5 * _randn_like(x, generator), x0


class DDIM(Solver):
    """Song et al. 2021, eq. 12; `eta=0` is deterministic, `eta=1` matches DDPM's variance."""

    def __init__(self, alphas_cumprod, *, clip_x0: bool = True, eta: float = 0.0) -> None:
        super().__init__(alphas_cumprod, clip_x0=clip_x0)
        if eta < 0:
            raise UserError(f"eta must be >= 0, got {eta}")
        self.eta = eta

    def step(self, x, t, t_next, eps, *, generator=None):
        a_t, a_prev = self.abar(t), self.abar(t_next)
        x0 = self.predict_x0(x, t, eps)
        eps = (x - a_t**0.5 * x0) / (1 - a_t) ** 0.5  # consistent with the clipped x̂₀
        sigma = self.eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)) ** 0.5
        x_next = a_prev**0.5 * x0 + max(1 - a_prev - sigma**2, 0.0) ** 0.5 * eps
        if sigma > 0:
            x_next = x_next + sigma * _randn_like(x, generator)
        return x_next, x0


class DPMSolverPP2M(Solver):
    """DPM-Solver++(2M) (Lu et al. 2022, alg. 2), data prediction, first order at the first and last step."""

    def __init__(self, alphas_cumprod, *, clip_x0: bool = True) -> None:
        super().__init__(alphas_cumprod, clip_x0=clip_x0)
        self._prev: tuple[float, torch.Tensor] | None = None  # (λ, x̂₀) of the previous step

    def _lambda(self, t: int) -> float:
        a = self.abar(t)
        return float("inf") if a >= 1.0 else 0.5 * (torch.tensor(a / (1 - a), dtype=torch.float64).log().item())

    def step(self, x, t, t_next, eps, *, generator=None):
        a_t, a_next = self.abar(t), self.abar(t_next)
        lam_t, lam_next = self._lambda(t), self._lambda(t_next)
        x0 = self.predict_x0(x, t, eps)
        sigma_ratio = ((1 - a_next) / (1 - a_t)) ** 0.5
        phi = -torch.expm1(torch.tensor(-(lam_next - lam_t), dtype=torch.float64)).item()  # 1 - e^{-h}
        d = x0
        if self._prev is not None and t_next >= 0:
            lam_prev, x0_prev = self._prev
            r = (lam_t - lam_prev) / (lam_next - lam_t)
            d = x0 + (0.5 / r) * (x0 - x0_prev)
        self._prev = (lam_t, x0)
        return sigma_ratio * x + a_next**0.5 * phi * d, x0


def make_solver(name: str, alphas_cumprod: torch.Tensor, **options) -> Solver:
    """A fresh solver (multistep solvers keep state, so make one per sampling run)."""
    if name == "ddpm":
        return DDPM(alphas_cumprod, **options)
    if name == "ddim":
        return DDIM(alphas_cumprod, **options)
    if name == "dpm++":
        return DPMSolverPP2M(alphas_cumprod, **options)
    raise UserError(f"unknown solver {name!r}; use one of {', '.join(SOLVERS)}")


def timesteps(num_timesteps: int, steps: int) -> list[int]:
    """`steps` descending timesteps with "trailing" spacing (Lin et al. 2024, table 2): starts at T-1."""
    if not 1 <= steps <= num_timesteps:
        raise UserError(f"steps must be in 1..{num_timesteps}, got {steps}")
    stride = num_timesteps / steps
    return [round(num_timesteps - i * stride) - 1 for i in range(steps)]

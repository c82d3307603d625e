"""Progressive distillation (Salimans & Ho 2022, "Progressive Distillation for Fast Sampling of
Diffusion Models", alg. 2): a student learns to do in one DDIM step what its teacher does in two.

Round by round the step count halves (16 → 8 → 4 → ...); each round's student starts as a copy of
its teacher. The first teacher is the run's EMA model *with* classifier-free guidance at the run's
scale w (conditional and unconditional branches in one batched forward); the student is a plain
conditional model sampled with guidance 1, so its NFE is its step count.

Every student step t → t'' lies on `timesteps(T, N)` and the teacher's two steps t → t' → t'' on
`timesteps(T, 2N)`: the trailing grids nest (checked), and the distilled run samples at exactly
`timesteps(T, K)`, the grid its last round trained on. Each round trains on the training loop
(`difflab.training.rounds`); this module holds the maths.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from difflab.diffusion import q_sample, timesteps, to_x0
from difflab.errors import UserError
from difflab.precision import PRECISIONS
from difflab.sampling import Sampler

ALLOWED_STEPS = (1, 2, 4, 8)
EstimateFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]  # (z (B,C,H,W), t (B,), cond) -> ε̂


@dataclass(frozen=True)
class DistillConfig:
    steps: int = 4  # the student's DDIM steps at the end (1, 2, 4 or 8)
    teacher_steps: int = 16  # DDIM steps of the guided teacher the first round imitates (16 ≈ its 20-step quality)
    minutes_per_round: float | None = 1.5  # CPU budget per halving; the first of this and `iterations` stops a round
    iterations: int | None = None  # optimiser steps per round
    batch_size: int = 64  # as in training
    lr: float = 2e-4  # AdamW, linear decay to 0 in each round (the paper's schedule); the student starts at the teacher
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"  # the student's forward: fp32, or bf16 autocast (weights, loss, AdamW stay fp32)

    def __post_init__(self) -> None:
        if self.steps not in ALLOWED_STEPS:
            raise UserError(f"--steps must be one of {', '.join(map(str, ALLOWED_STEPS))}, got {self.steps}")
        if self.steps >= self.teacher_steps:
            raise UserError(f"--steps {self.steps} must be fewer than the teacher's {self.teacher_steps} steps; "
                            "fix: a smaller --steps (the teacher already samples in that many)")
        ratio = self.teacher_steps // self.steps
        if self.teacher_steps % self.steps or ratio & (ratio - 1):
            raise UserError(f"--teacher-steps {self.teacher_steps} must be --steps {self.steps} times a power of 2")
        if self.minutes_per_round is None and self.iterations is None:
            raise UserError("give --minutes-per-round or --iterations (a budget for each round)")
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        from difflab.training.config import RANGES, _check_range

        for name, like in (("minutes_per_round", "minutes"), ("iterations", "steps"), ("batch_size", "batch_size"),
                           ("lr", "lr")):  # the ranges training's own budget and optimiser options have (NaN fails)
            _check_range(name, getattr(self, name), *RANGES[like])

    @property
    def rounds(self) -> list[int]:
        """Student step counts, one per round: 16 → [8, 4] for steps 4."""
        return [self.teacher_steps >> r for r in range(1, int(math.log2(self.teacher_steps // self.steps)) + 1)]


def alpha_sigma(alphas_cumprod: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """α_t = sqrt(ᾱ_t), σ_t = sqrt(1 − ᾱ_t) per sample, `(B, 1, 1, 1)`; t = −1 is the clean end (α = 1, σ = 0)."""
    abar = torch.cat([alphas_cumprod.double(), alphas_cumprod.new_ones(1, dtype=torch.float64)])  # index −1 → 1
    a = abar.to(like.device)[t].view(-1, *([1] * (like.ndim - 1)))
    return a.sqrt(), (1 - a).sqrt()


def ddim_step(z: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, eps: torch.Tensor, alphas_cumprod,
              *, clip_x0: bool = True) -> torch.Tensor:
    """`DDIM.step` (eta 0, x̂₀ clipped like the sampler) with a timestep per sample: z_{t_next}."""
    a, s = alpha_sigma(alphas_cumprod, t, z)
    a_next, s_next = alpha_sigma(alphas_cumprod, t_next, z)
    x0 = (z - s * eps) / a
    x0 = x0.clamp(-1, 1) if clip_x0 else x0
    eps = (z - a * x0) / s  # consistent with the clipped x̂₀
    return (a_next * x0 + s_next * eps).to(z.dtype)


def distill_target(z_t: torch.Tensor, z_end: torch.Tensor, t: torch.Tensor, t_end: torch.Tensor,
                   alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x̃ = (z_t'' − (σ_t''/σ_t) z_t) / (α_t'' − (σ_t''/σ_t) α_t) (Salimans & Ho 2022, alg. 2):
    the x̂₀ with which ONE DDIM step t → t'' lands exactly on the teacher's two-step z_t''. `(B, C, H, W)`."""
    a, s = alpha_sigma(alphas_cumprod, t, z_t)
    a_end, s_end = alpha_sigma(alphas_cumprod, t_end, z_t)
    ratio = s_end / s
    return ((z_end - ratio * z_t) / (a_end - ratio * a)).to(z_t.dtype)


def guided_estimate(model: torch.nn.Module, alphas_cumprod, guidance: float | Sampler, null_class: int | None, *,
                    guide: torch.nn.Module | None = None):
    """ε̂(z, t, cond) of the teacher, through the one `Sampler`: a CFG scale w (a student teaching the next
    round: w = 1), or the teacher run's own sampler with its interval and autoguidance by `guide`
    (the null branch is the null class or the empty prompt)."""
    sampler = guidance if isinstance(guidance, Sampler) else Sampler("ddim", guidance=guidance, precision="fp32")
    weak = sampler.model_estimate(guide, alphas_cumprod) if guide is not None and sampler.needs_guide else None
    return sampler.guided(sampler.model_estimate(model, alphas_cumprod), null_class or 0, len(alphas_cumprod),
                          guide=weak)


def nested_grids(num_timesteps: int, student_steps: int) -> tuple[list[int], list[int]]:
    """The student grid (N steps) and the teacher's (2N), checked to nest: teacher[2j] == student[j]."""
    student, teacher = timesteps(num_timesteps, student_steps), timesteps(num_timesteps, 2 * student_steps)
    if teacher[::2] != student:
        raise UserError(f"the {2 * student_steps}-step grid does not contain the {student_steps}-step one "
                        f"for T={num_timesteps}; fix: a num_timesteps divisible by {2 * student_steps}")
    return student, teacher


class RoundTargets:
    """Draws (z_t, t, cond, x̃) batches for one round: t on the student grid, x̃ from two teacher steps."""

    def __init__(self, teacher: EstimateFn, alphas_cumprod, num_timesteps: int, student_steps: int) -> None:
        student, teacher_grid = nested_grids(num_timesteps, student_steps)
        self.teacher, self.alphas_cumprod = teacher, alphas_cumprod
        self.t = torch.tensor(student)  # (N,)
        self.t_mid = torch.tensor(teacher_grid[1::2])  # (N,)
        self.t_end = torch.tensor(student[1:] + [-1])  # (N,); −1: the last step ends on the clean image

    @torch.no_grad()
    def __call__(self, x0: torch.Tensor, cond: torch.Tensor | None, generator: torch.Generator):
        b, device = x0.shape[0], x0.device
        j = torch.randint(0, len(self.t), (b,), generator=generator)
        t, t_mid, t_end = (v[j].to(device) for v in (self.t, self.t_mid, self.t_end))
        noise = torch.randn(x0.shape, generator=generator).to(device)  # (B, C, H, W)
        z_t = q_sample(x0, t, noise, self.alphas_cumprod)
        z_mid = ddim_step(z_t, t, t_mid, self.teacher(z_t, t, cond), self.alphas_cumprod)
        z_end = ddim_step(z_mid, t_mid, t_end, self.teacher(z_mid, t_mid, cond), self.alphas_cumprod)
        return z_t, t, distill_target(z_t, z_end, t, t_end, self.alphas_cumprod)


def student_loss(student, objective: str, alphas_cumprod, z_t, t, cond, x_tilde) -> torch.Tensor:
    """MSE of the student's x̂₀ against x̃, weighted by max(SNR_t, 1) ("truncated SNR", sec. 4 of the paper)."""
    x0_hat = to_x0(objective, student(z_t, t, cond), z_t, t, alphas_cumprod)
    a, s = alpha_sigma(alphas_cumprod, t, z_t)
    weight = (a**2 / s**2).clamp(min=1.0, max=1e4).to(z_t.dtype)  # (B, 1, 1, 1); capped where σ → 0
    return (weight * (x0_hat - x_tilde) ** 2).mean()


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model).eval().requires_grad_(False)


__all__ = ["ALLOWED_STEPS", "DistillConfig", "RoundTargets", "ddim_step", "distill_target", "frozen_copy",
           "guided_estimate", "nested_grids", "student_loss"]

"""`Sampler`: solver, steps, guidance, precision and seed — the one sampling setup every caller uses.

Generate, the editor, distillation's teacher, explain and the studio all build their noise estimate
and their solver here, and run the one loop (`difflab.diffusion.sampling.sample`):

    sampler = Sampler("dpm++", steps=6, guidance=3.0, seed=0)
    images = sampler.generate(model, alphas_cumprod, Condition.classes([7] * 16, 10))   # (16, C, H, W)

The model is a `Denoiser` (`model(x_t, t, cond)` with `model.spec.prediction`); whatever it
predicts, the solver sees ε̂. Chunks keep memory flat: 10,000 images need not live at once.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from difflab.diffusion import make_solver, model_noise_estimate, sample, timesteps
from difflab.diffusion.guidance import ConditionalEstimate, Guidance, guided_estimate
from difflab.diffusion.sampling import NoiseEstimate, Step
from difflab.diffusion.solvers import SOLVERS, Solver
from difflab.errors import UserError
from difflab.precision import PRECISIONS, autocast, resolve_precision
from difflab.sampling.condition import Condition, null_of
from difflab.sampling.filter import Redraws, SampleFilter, seeded_noise

MAX_REDRAWS = 20  # a filter that rejects an image 20 times in a row will not accept it on the 21st
MAX_STEPS = 1000  # no schedule has more timesteps than this by default; more steps cannot help
GUIDANCE_METHODS = ("cfg", "auto")  # classifier-free; autoguidance by the run's guide network


@dataclass(frozen=True)
class Sampler:
    solver: str = "dpm++"
    steps: int = 6  # DPM-Solver++(2M): 4-8 steps are within 5% of 100 on FD (benchmarks/sampling.py)
    guidance: float = 2.0  # guidance scale w: 1 plain conditional, 0 unconditional (CFG); the best CFG-only point
    # (a run's own default, TrainConfig, is w = 1.3 and its filter classifier: a bare Sampler has no filter)
    guidance_method: str = "cfg"  # cfg: the null branch is the weak one; auto: the run's guide network is
    guidance_interval: tuple[float, float] = (0.5, 1.0)  # guide only where t/T lies in [lo, hi]; TrainConfig's default
    guidance_rescale: float = 0.0  # φ of CFG rescale (Lin et al. 2024); 0: off
    autoguidance: float = 1.0  # cfg only: + (w_auto − 1)(ε_c − ε_guide) on every step; 1: off (benchmarks/guidance_combo.py)
    redraws: int = 0  # with the run's filter classifier (sampling/filter.py): draw a rejected image at most this
    # many more times; 0: off (a run's own default, TrainConfig.redraws, is 3)
    eta: float = 0.0  # DDIM only: 0 deterministic, 1 DDPM-like
    precision: str = "auto"  # fp32 | bf16 (network under autocast) | auto: bf16 on CPUs with native bf16
    seed: int = 0

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise UserError(f"unknown solver {self.solver!r}; use one of {', '.join(SOLVERS)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= MAX_STEPS:
            raise UserError(f"--steps must be an integer in 1..{MAX_STEPS}, got {self.steps!r}")
        if not _number(self.guidance) or not 0 <= self.guidance <= 100:
            raise UserError(f"--guidance must be a number in [0, 100], got {self.guidance}")
        if self.guidance_method not in GUIDANCE_METHODS:
            raise UserError(f"unknown guidance method {self.guidance_method!r}; use one of {', '.join(GUIDANCE_METHODS)}")
        object.__setattr__(self, "guidance_interval", parse_interval(self.guidance_interval))
        if not _number(self.autoguidance) or not 1 <= self.autoguidance <= 100:
            raise UserError(f"--autoguidance must be a number in [1, 100] (1: off), got {self.autoguidance}")
        if self.autoguidance != 1 and self.guidance_method != "cfg":
            raise UserError("--autoguidance adds autoguidance to CFG; with --guidance-method auto use --guidance")
        if not _number(self.guidance_rescale) or not 0 <= self.guidance_rescale <= 1:
            raise UserError(f"--guidance-rescale must be a number in [0, 1], got {self.guidance_rescale}")
        if isinstance(self.redraws, bool) or not isinstance(self.redraws, int) or not 0 <= self.redraws <= MAX_REDRAWS:
            raise UserError(f"--redraws must be an integer in 0..{MAX_REDRAWS} (0: no filter), got {self.redraws!r}")
        if not math.isfinite(self.eta) or not 0 <= self.eta <= 1:
            raise UserError(f"--eta must be in [0, 1], got {self.eta}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise UserError(f"--seed must be an integer in 0..2**63-1, got {self.seed!r}")

    def replace(self, **changes) -> Sampler:
        """A copy with `changes`; None values keep the current setting."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    # --- the pieces ----------------------------------------------------------------------------
    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)

    def timesteps(self, num_timesteps: int) -> list[int]:
        return timesteps(num_timesteps, self.steps)

    def guidance_for(self, num_timesteps: int) -> Guidance:
        """This sampler's guidance on a schedule of `num_timesteps` (the interval turned into timesteps)."""
        lo, hi = self.guidance_interval
        interval = None if (lo, hi) == (0.0, 1.0) else (round(lo * (num_timesteps - 1)), round(hi * (num_timesteps - 1)))
        return Guidance(self.guidance, self.guidance_method, interval, self.guidance_rescale, self.autoguidance)

    @property
    def needs_guide(self) -> bool:
        """Whether sampling runs the run's guide network (autoguidance, alone or on top of CFG)."""
        return (self.guidance_method == "auto" and self.guidance != 1.0) or self.autoguidance != 1.0

    def make_solver(self, alphas_cumprod: torch.Tensor) -> Solver:
        """A fresh solver (multistep solvers keep state between steps)."""
        options = {"eta": self.eta} if self.solver == "ddim" else {}
        return make_solver(self.solver, alphas_cumprod, **options)

    def model_estimate(self, model: torch.nn.Module, alphas_cumprod: torch.Tensor) -> ConditionalEstimate:
        """ε̂(x_t, t, cond) of a `Denoiser`, the network under bf16 autocast when asked (solver stays fp32)."""
        device = next(model.parameters()).device
        spec = model.spec
        if not spec.samplable:
            raise UserError("this model is a single-step denoiser (--objective denoise), not a diffusion model; "
                            "fix: use `difflab edit denoise-ood` on it, or sample from a v/eps/x0 run")
        if resolve_precision(self.precision, device) != "bf16":
            return model_noise_estimate(model, spec.prediction, alphas_cumprod.to(device))

        def bf16_network(x, t, cond=None):
            with autocast(self.precision, device):
                return model(x, t, cond).float()

        return model_noise_estimate(bf16_network, spec.prediction, alphas_cumprod.to(device))

    def guided(self, estimate: ConditionalEstimate, num_classes: int, num_timesteps: int = 1000, *,
               guide: ConditionalEstimate | None = None) -> ConditionalEstimate:
        """ε̂(x, t, cond) guided at this sampler's settings, the null branch taken from each batch's own `cond`
        (distillation's teacher sees a new batch of conditions each call); `guide`: the guide network's
        estimate, which autoguidance needs."""
        if self.needs_guide and guide is None:
            raise UserError("autoguidance needs the run's guide network (guide.safetensors); "
                            "fix: --guidance-method cfg --autoguidance 1")
        guidance = self.guidance_for(num_timesteps)

        def guided(x, t, cond):
            return guided_estimate(estimate, cond, null_of(cond, num_classes), guidance, guide=guide)(x, t)

        return guided

    def noise_estimate(self, model: torch.nn.Module, alphas_cumprod: torch.Tensor, cond: Condition | None,
                       *, device=None, guide: torch.nn.Module | None = None) -> NoiseEstimate:
        """ε̂(x_t, t) for one batch of conditions, guided at this sampler's settings; `guide` is the weaker
        network autoguidance needs (`Run.guide`)."""
        estimate = self.model_estimate(model, alphas_cumprod)
        guidance = self.guidance_for(len(alphas_cumprod))
        weak = None
        if self.needs_guide:
            if guide is None:
                raise UserError("autoguidance needs the run's guide network (guide.safetensors, saved by training); "
                                "fix: pass guide=run.guide (Run.sample does), or use --guidance-method cfg "
                                "--autoguidance 1")
            weak = self.model_estimate(guide, alphas_cumprod)
        device = device or next(model.parameters()).device
        values = None if cond is None or cond.values is None else cond.values.to(device)
        null = None if values is None else null_of(values, cond.num_classes)
        return guided_estimate(estimate, values, null, guidance, guide=weak)

    # --- running it ----------------------------------------------------------------------------
    def run(self, estimate: NoiseEstimate, x: torch.Tensor, alphas_cumprod: torch.Tensor, *,
            generator: torch.Generator | None = None, callback: Callable[[Step], None] | None = None,
            project=None, timesteps: list[int] | None = None) -> torch.Tensor:
        """The one loop from `x` (pure noise at T unless `timesteps` starts lower) to the clean image."""
        ts = self.timesteps(len(alphas_cumprod)) if timesteps is None else timesteps
        return sample(estimate, x, ts, self.make_solver(alphas_cumprod), generator=generator or self.generator(),
                      callback=callback, project=project)

    def chunks(self, model: torch.nn.Module, alphas_cumprod: torch.Tensor, cond: Condition, *,
               batch_size: int = 500, generator: torch.Generator | None = None,
               callback: Callable[[int, Step], None] | None = None,
               guide: torch.nn.Module | None = None, filter: SampleFilter | None = None,
               tally: Redraws | None = None) -> Iterator[tuple[Condition, torch.Tensor]]:
        """Yield `(condition of the chunk, images (b, C, H, W) on the CPU)`, `b <= batch_size`, lazily.

        Arguments are checked before the first chunk; `callback(chunk_start, step)` sees every step of the first
        draws. `filter` (with `redraws` > 0): images it rejects are drawn again (`tally` counts them).
        The same seed gives the same images whatever `batch_size`."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise UserError(f"chunk size must be at least 1, got {batch_size}")
        if len(cond) < 1:
            raise UserError(f"number of images must be at least 1, got {len(cond)}")
        model.spec  # noqa: B018 - a model without the Denoiser contract fails here, not at the first chunk
        filtering = filter if self.redraws and cond.kind != "text" else None  # it knows classes, not captions
        return self._chunks(model, alphas_cumprod, cond, batch_size, generator or self.generator(), callback, guide,
                            filtering, tally if tally is not None else Redraws())

    @torch.no_grad()
    def _chunks(self, model, alphas_cumprod, cond, batch_size, generator, callback, guide, filter, tally):
        device = next(model.parameters()).device
        shape = model.spec.image_shape
        for start in range(0, len(cond), batch_size):
            part = cond.slice(start, start + batch_size)
            x = torch.randn((len(part), *shape), generator=generator, device=generator.device).to(device)
            estimate = self.noise_estimate(model, alphas_cumprod, part, device=device, guide=guide)
            step_cb = (lambda s, _start=start: callback(_start, s)) if callback else None
            images = self.run(estimate, x, alphas_cumprod, generator=generator, callback=step_cb).cpu()
            del x, estimate
            if filter is not None:
                images = self._redraw(filter, tally, model, alphas_cumprod, part, images, start, guide)
            yield part, images
            del images  # the consumer owns it now; holding it here would double the peak

    def _redraw(self, filter: SampleFilter, tally: Redraws, model, alphas_cumprod, part: Condition,
                images: torch.Tensor, start: int, guide) -> torch.Tensor:
        """Draw the images `filter` rejects again (fresh noise per image and draw), up to `redraws` times; an image
        never accepted keeps its most recognisable draw."""
        device = next(model.parameters()).device
        labels = part.values if part.kind == "class" else None
        score = filter.scores(images, labels)
        todo = (score < filter.threshold).nonzero().flatten()
        tally.images += len(images)
        tally.redrawn += len(todo)
        for draw in range(1, self.redraws + 1):
            if not len(todo):
                break
            sub = part.select(todo)
            tally.draws += len(todo)
            x = seeded_noise(self.seed, draw, todo + start, tuple(images.shape[1:])).to(device)
            generator = torch.Generator().manual_seed(self.seed + draw)  # stochastic solvers' noise
            estimate = self.noise_estimate(model, alphas_cumprod, sub, device=device, guide=guide)
            new = self.run(estimate, x, alphas_cumprod, generator=generator).cpu()  # bars count first draws
            new_score = filter.scores(new, None if labels is None else labels[todo])
            better = new_score > score[todo]
            images[todo[better]], score[todo[better]] = new[better], new_score[better]
            todo = todo[new_score < filter.threshold]
        tally.kept_unsure += len(todo)
        return images

    def generate(self, model: torch.nn.Module, alphas_cumprod: torch.Tensor, cond: Condition, *,
                 batch_size: int = 500, generator: torch.Generator | None = None,
                 callback: Callable[[int, Step], None] | None = None, guide: torch.nn.Module | None = None,
                 filter: SampleFilter | None = None, tally: Redraws | None = None) -> torch.Tensor:
        """Every image at once `(N, C, H, W)`: the concatenation of `chunks` (same seed, same images)."""
        parts = self.chunks(model, alphas_cumprod, cond, batch_size=batch_size, generator=generator, callback=callback,
                            guide=guide, filter=filter, tally=tally)
        return torch.cat([images for _, images in parts])


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_interval(value) -> tuple[float, float]:
    """`(lo, hi)` fractions of the noise schedule, from a pair or a "lo,hi" string; one line when it is not."""
    text = value if isinstance(value, str) else None
    try:
        lo, hi = (float(v) for v in (value.split(",") if text is not None else value))
    except (TypeError, ValueError):
        raise UserError(f"--guidance-interval must be two numbers LO,HI in [0, 1] (fractions of the noise "
                        f"schedule, e.g. 0.2,0.7), got {value!r}") from None
    if not (_number(lo) and _number(hi) and 0 <= lo <= hi <= 1):
        raise UserError(f"--guidance-interval must be LO,HI with 0 <= LO <= HI <= 1 (e.g. 0.2,0.7), got {value!r}")
    return (lo, hi)


__all__ = ["GUIDANCE_METHODS", "Sampler", "parse_interval"]

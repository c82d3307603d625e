"""`Editor`: every edit on a trained run, tensors in and out.

    editor = Editor(difflab.load_run("runs/x"), steps=20)
    sevens = editor.sdedit(ones, levels=[1, 5, 10], label=7)     # (B, 3, C, H, W)
    both = editor.anagram((6, 9), "rot180", n=8)                  # (8, C, H, W)

Each method builds a noise estimate through the run's `Sampler` (the network seen as ε̂, whatever it
predicts, with CFG) and a start/projection, and runs the one sampling loop; the lower-level functions it calls
(`sdedit`, `inpaint`, `compositions.anagram`, ...) take any `NoiseEstimate`, so they compose.
"""

from __future__ import annotations

import torch

from difflab.diffusion import compositions
from difflab.diffusion.sampling import NoiseEstimate
from difflab.edit.baselines import denoise_comparison, forward_noise
from difflab.edit.filters import lowpass
from difflab.edit.inpaint import inpaint
from difflab.edit.sdedit import Level, level_schedule, sdedit
from difflab.edit.views import get_view
from difflab.errors import UserError

EDIT_STEPS = 20  # strided schedule of the edits: fine enough for SDEdit levels 1..20 (the run's default is 10)


class Editor:
    """A run's model, schedule and sampler settings, ready to edit with (`Run` → tensors)."""

    def __init__(self, run, *, solver: str | None = None, steps: int | None = EDIT_STEPS, guidance: float | None = None,
                 eta: float = 0.0, precision: str = "auto", **guidance_settings) -> None:
        """`guidance_settings`: the `Sampler`'s guidance_method / _interval / _rescale (None: the run's)."""
        run.check_samplable()
        self.run = run
        self.sampler = run.sampler(solver=solver, steps=steps, guidance=guidance, eta=eta, precision=precision,
                                   **guidance_settings)
        self.alphas_cumprod = run.alphas_cumprod
        self.device = run.device
        self.shape = run.spec.image_shape

    @property
    def num_timesteps(self) -> int:
        return len(self.alphas_cumprod)

    def estimate(self, label: int | str | None, n: int) -> NoiseEstimate:
        """ε̂ for `n` images of class `label` (or, for a text run, of the prompt `label` if it is a string),
        with the run's guidance; None: unconditional."""
        if label is None:
            cond = None
        elif isinstance(label, str):
            cond = self.run.condition(prompts=[label] * n)  # (n, L, D); a non-text run refuses here
        else:
            if not self.run.num_classes:
                raise UserError("this run is unconditional; fix: drop the class label")
            cond = self.run.condition(labels=torch.full((n,), label, dtype=torch.long))
        guide = self.run.guide if self.sampler.needs_guide else None
        return self.sampler.noise_estimate(self.run.model, self.alphas_cumprod, cond, device=self.device, guide=guide)

    def solver(self):
        """A fresh solver (multistep solvers keep state between steps)."""
        return self.sampler.make_solver(self.alphas_cumprod)

    def check_images(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or tuple(images.shape[1:]) != self.shape:
            raise UserError(f"images of shape {tuple(images.shape)} do not fit this model; fix: give (B, {', '.join(map(str, self.shape))})")
        return images.to(self.device).float()

    # --- the edits ---------------------------------------------------------------------------
    def noise(self, images: torch.Tensor, ts, *, seed: int = 0) -> torch.Tensor:
        """The forward process at `ts`: `(B, len(ts), C, H, W)`."""
        return forward_noise(self.check_images(images), ts, self.alphas_cumprod, generator=_gen(seed)).cpu()

    def denoise(self, images: torch.Tensor, ts, *, blur_sigma: float = 1.0, seed: int = 0) -> torch.Tensor:
        """Noisy / blurred / one-step / iterative for each t: `(len(ts), 4, B, C, H, W)`."""
        x = self.check_images(images)
        return denoise_comparison(self.estimate(None, len(x)), x, ts, self.solver, self.alphas_cumprod,
                                  steps=self.sampler.steps, blur_sigma=blur_sigma, generator=_gen(seed)).cpu()

    @torch.no_grad()
    def sdedit(self, images: torch.Tensor, levels: list[Level], *, label: int | None = None, seed: int = 0) -> torch.Tensor:
        """SDEdit at each level (int: strided steps, float: fraction of T): `(B, len(levels), C, H, W)`."""
        x = self.check_images(images)
        schedules = [level_schedule(level, self.num_timesteps, self.sampler.steps) for level in levels]
        estimate = self.estimate(label, len(x))  # each level from the same seed: same noise, only t₀ differs
        out = [sdedit(estimate, x, s, self.solver(), self.alphas_cumprod, generator=_gen(seed)) for s in schedules]
        return torch.stack(out, dim=1).cpu()

    @torch.no_grad()
    def inpaint(self, images: torch.Tensor, mask: torch.Tensor, *, label: int | None = None, resample: int = 1,
                seed: int = 0) -> torch.Tensor:
        """Regenerate `mask` (True) from pure noise, known pixels kept exactly: `(B, C, H, W)`."""
        x = self.check_images(images)
        ts = self.sampler.timesteps(self.num_timesteps)
        return inpaint(self.estimate(label, len(x)), x, mask, ts, self.solver(), self.alphas_cumprod,
                       resample=resample, generator=_gen(seed)).cpu()

    @torch.no_grad()
    def anagram(self, labels: tuple[int | str, int | str], view: str, *, n: int = 1, seed: int = 0) -> torch.Tensor:
        """One image reading as `labels[0]` upright and `labels[1]` through `view`: `(n, C, H, W)`."""
        a, b = _pair(labels, "labels")
        v = get_view(view)
        estimate = compositions.anagram(self.estimate(a, n), self.estimate(b, n), v.apply, v.inverse)
        return self._generate(estimate, n, seed)

    @torch.no_grad()
    def hybrid(self, far: int | str, near: int | str, sigma: float, *, n: int = 1, seed: int = 0) -> torch.Tensor:
        """Low frequencies of `far`, high of `near` (sigma: Gaussian σ in pixels; 0 = plain `far`): `(n, C, H, W)`."""
        if sigma < 0:
            raise UserError(f"--sigma must be >= 0 (pixels of Gaussian low-pass), got {sigma}")
        estimate = compositions.hybrid(self.estimate(far, n), self.estimate(near, n), lowpass(sigma))
        return self._generate(estimate, n, seed)

    def plain(self, label: int | None, *, n: int = 1, seed: int = 0) -> torch.Tensor:
        """Ordinary samples through the same path (the reference the compositions reduce to)."""
        return self._generate(self.estimate(label, n), n, seed)

    def _generate(self, estimate: NoiseEstimate, n: int, seed: int) -> torch.Tensor:
        if n < 1:
            raise UserError(f"--n must be at least 1, got {n}")
        generator = _gen(seed)
        x = torch.randn((n, *self.shape), generator=generator).to(self.device)  # (n, C, H, W)
        return self.sampler.run(estimate, x, self.alphas_cumprod, generator=generator).cpu()


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pair(values, name: str) -> tuple:
    if len(values) != 2:
        raise UserError(f"--{name} needs two class ids like 6,9 (or two prompts), got {','.join(map(str, values))}")
    return tuple(v if isinstance(v, str) else int(v) for v in values)

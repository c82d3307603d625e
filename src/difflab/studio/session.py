"""`Studio`: one loaded run and every action of the page, each a call to the API the CLI uses.

Generate is `Run.sample` (the `Sampler` the run's config names, with the page's overrides); edits go
through `Editor` (`difflab edit`'s own, via `edit.commands.make_editor`); Explain is
`explain.commands.explain_attribute`. The model is loaded once and kept; `JobLock` runs one job at a
time. Files go to a temp folder; the run folder is written only by `save_to_run`.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from difflab.errors import UserError
from difflab.run import Run
from difflab.studio import pictures
from difflab.studio.inputs import EVERY_CLASS, MAX_SAMPLES, number
from difflab.studio.jobs import JobLock, stream

NOISE_STRIP = (0.1, 0.25, 0.5, 0.75, 1.0)  # fractions of T shown by the forward-noise strip
CHAIN = (0.25, 0.5, 0.75, 1.0)  # SDEdit's chain: these fractions of the chosen noise level


@dataclass
class Generated:
    """What one Generate made: the images, their labels/prompts and how (for Explain, downloads, save to run)."""

    images: torch.Tensor  # (N, C, H, W) in [-1, 1]
    labels: torch.Tensor | None  # (N,) class ids, None: unconditional or prompts
    prompts: list[str] | None
    seed: int
    settings: dict
    png: Path
    npz: Path


class Studio:
    """The run behind the page; `out` holds everything it writes (a fresh temp folder by default)."""

    def __init__(self, run: str | Path | Run, *, out: str | Path | None = None, device: str = "cpu") -> None:
        self.run = run if isinstance(run, Run) else Run.load(run, device=device)
        self.run.check_samplable()
        self.out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="difflab-studio-"))
        self.out.mkdir(parents=True, exist_ok=True)
        self.lock = JobLock()
        self._names = itertools.count(1)

    def warm_up(self) -> None:
        """One tiny sample, so the first click does not pay for lazy kernel setup (seconds on a CPU)."""
        labels = torch.zeros(1, dtype=torch.long) if self.run.num_classes else None
        with self.lock.job("warming up"):
            self.run.sample(labels, n=1, steps=2)

    def path(self, stem: str, suffix: str) -> Path:
        return self.out / f"{stem}-{next(self._names):04d}{suffix}"

    # --- settings ------------------------------------------------------------------------------
    def settings(self, solver: str, steps, guidance, method: str, autoguidance=None) -> dict:
        """The page's sampler fields → `Sampler` overrides, checked by building the sampler. `autoguidance` is
        the strength added on top of CFG (1: none; None: the run's); autoguidance alone ("auto") takes `guidance`."""
        s = dict(solver=solver, steps=number(steps, "steps", 1, 1000, integer=True),
                 guidance=number(guidance, "guidance strength", 0, 100), guidance_method=method)
        if autoguidance is not None and method == "cfg":
            if self.run.guide is None:
                raise UserError("this run has no guide network (guide.safetensors); fix: set autoguidance to 1")
            s["autoguidance"] = number(autoguidance, "autoguidance", 1, 100)
        self.run.sampler(**s)  # one-line UserError for a bad combination (e.g. auto without a guide network)
        return s

    def targets(self, target, n: int) -> tuple[torch.Tensor | None, list[str] | None]:
        """Labels or prompts for `n` images: a class id, EVERY_CLASS in turn, a prompt (text runs) or None."""
        from difflab.sampling.outputs import sample_labels, sample_prompts

        if isinstance(target, str) and target != EVERY_CLASS:
            return None, sample_prompts([target], None, n, self.run)
        label = None if target in (None, EVERY_CLASS) else (int(target),)
        labels, _ = sample_labels(label, n, self.run.num_classes)
        return labels, None

    # --- Generate ------------------------------------------------------------------------------
    def generate(self, target, n, settings: dict, seed) -> Iterator[tuple[str, object]]:
        """`("step", (i, steps, x_t))` after each sampler step but the last, then `("done", Generated)`."""
        n = number(n, "number of samples", 1, MAX_SAMPLES, integer=True)
        seed = number(seed, "seed", 0, 2**63 - 1, integer=True)
        labels, prompts = self.targets(target, n)
        steps = self.run.sampler(**settings).steps

        def work(report) -> Generated:
            with self.lock.job("Generate"):
                images = self.run.sample(labels, prompts=prompts, n=n, seed=seed,
                                         callback=lambda _, s: s.t_next >= 0 and report((s.index + 1, steps, s.x)),
                                         **settings)  # the last step's x is the result, shown once below
            png = pictures.write_png(pictures.grid_picture(images), self.path("samples", ".png"))
            npz = pictures.write_npz(self.path("samples", ".npz"), images, labels, prompts)
            return Generated(images, labels, prompts, seed, settings, png, npz)

        return stream(work)

    def save_to_run(self, generated: Generated | None) -> Path:
        """The explicit "save to run": the grid into RUN/samples/studio-<time>.png (the only write to a run)."""
        if generated is None:
            raise UserError("nothing generated yet; fix: press Generate first")
        from difflab.report.images import save_grid

        path = self.run.folder.sub("samples", f"studio-{time.strftime('%Y%m%d-%H%M%S')}.png", create=True)
        return save_grid(generated.images, path, nrow=max(1, round(len(generated.images) ** 0.5)))

    # --- Edit ----------------------------------------------------------------------------------
    def editor(self):
        """`difflab edit`'s Editor: the run's solver and guidance on the 20-step edit schedule."""
        from difflab.edit.commands import make_editor

        return make_editor(self.run, {})

    def sdedit(self, x: torch.Tensor, level, target: int | str | None, seed) -> tuple[list[float], torch.Tensor]:
        """SDEdit of `x` `(1, C, H, W)` at fractions CHAIN of `level`: (levels, `(2, L, C, H, W)`: noised, edited)."""
        level = number(level, "noise level", 0.02, 1.0)
        seed = number(seed, "seed", 0, 2**63 - 1, integer=True)
        levels = [round(level * f, 4) for f in CHAIN]
        editor = self.editor()
        with self.lock.job("SDEdit"):
            edited = editor.sdedit(x, levels, label=target, seed=seed)[0]  # (L, C, H, W)
            ts = [round(v * (editor.num_timesteps - 1)) for v in levels]
            noised = editor.noise(x, ts, seed=seed)[0]  # (L, C, H, W)
        return levels, torch.stack([noised, edited])

    def noise_strip(self, x: torch.Tensor, seed) -> tuple[list[int], torch.Tensor]:
        """The forward process q(x_t | x_0) at NOISE_STRIP: (timesteps, `(K, C, H, W)`)."""
        seed = number(seed, "seed", 0, 2**63 - 1, integer=True)
        editor = self.editor()
        ts = [round(f * (editor.num_timesteps - 1)) for f in NOISE_STRIP]
        with self.lock.job("forward noise"):
            return ts, editor.noise(x, ts, seed=seed)[0]

    def inpaint(self, x: torch.Tensor, mask: torch.Tensor, target: int | str | None, seed) -> torch.Tensor:
        """Regenerate `mask` of `x`: `(1, C, H, W)`."""
        seed = number(seed, "seed", 0, 2**63 - 1, integer=True)
        with self.lock.job("inpainting"):
            return self.editor().inpaint(x, mask, label=target, seed=seed)

    # --- Illusions -----------------------------------------------------------------------------
    def anagram(self, first, second, view: str, n, seed) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` visual anagrams: (images, images seen through `view`), each `(n, C, H, W)`."""
        from difflab.edit.views import get_view

        v = get_view(view)
        n = number(n, "number of images", 1, MAX_SAMPLES, integer=True)
        seed = number(seed, "seed", 0, 2**63 - 1, integer=True)
        with self.lock.job("anagram"):
            images = self.editor().anagram((first, second), view, n=n, seed=seed)
        return images, v.apply(images)

    def hybrid(self, far, near, sigma, n, seed) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` hybrid images: (full size, shrunk 2× and enlarged back), each `(n, C, H, W)`."""
        from difflab.edit.filters import shrink

        sigma = number(sigma, "low-pass sigma", 0, 10)
        n = number(n, "number of images", 1, MAX_SAMPLES, integer=True)
        seed = number(seed, "seed", 0, 2**63 - 1, integer=True)
        with self.lock.job("hybrid"):
            images = self.editor().hybrid(far, near, sigma, n=n, seed=seed)
        return images, shrink(images, 2)

    # --- Explain -------------------------------------------------------------------------------
    def explain(self, generated: Generated | None, t, method: str) -> Path:
        """Attributions for image 1 of the last Generate at timestep `t` (`difflab explain attribute`)."""
        from difflab.explain.commands import explain_attribute

        if generated is None:
            raise UserError("no sample to explain yet; fix: press Generate on the Generate tab first")
        if generated.prompts is not None:
            raise UserError("Explain follows a class, not a prompt; fix: generate with a class")
        t = number(t, "timestep", 0, len(self.run.alphas_cumprod) - 1, integer=True)
        label = int(generated.labels[0]) if generated.labels is not None else None
        out = self.path("explain", "")
        with self.lock.job("Explain"):
            paths, _ = explain_attribute(self.run, out, method=method, timesteps=(t,), label=label,
                                         seed=generated.seed, settings=generated.settings)
        return paths[0]


__all__ = ["CHAIN", "NOISE_STRIP", "Generated", "Studio"]

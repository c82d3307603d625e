"""`Run`: a trained run folder as a Python object — its config, its network, and how to sample from it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from difflab.diffusion import NoiseSchedule
from difflab.errors import UserError
from difflab.nn.spec import ModelFactory, build
from difflab.run.folder import RunFolder
from difflab.sampling import Condition, Sampler
from difflab.sampling.filter import Redraws, SampleFilter
from difflab.training.config import TrainConfig


class Run:
    """A run's config, its `Denoiser` (EMA weights by default) and class names; `folder` owns its files."""

    def __init__(self, path: str | Path, config: TrainConfig, model: torch.nn.Module, class_names: tuple[str, ...],
                 class_prompts: list[list[str]] | None = None):
        self.folder = RunFolder(path)
        self.path, self.config, self.model, self.class_names = self.folder.path, config, model, tuple(class_names)
        self.class_prompts = class_prompts  # text runs: per class, the training captions `--label k` stands for
        self.alphas_cumprod = NoiseSchedule(config.schedule, config.num_timesteps).alphas_cumprod
        self._embedder = None
        self._guide, self._model_factory = None, None
        self._filter: SampleFilter | bool | None = False  # False: not looked for yet

    @classmethod
    def load(cls, path: str | Path, *, weights: str = "ema", device: str = "cpu",
             model_factory: ModelFactory | None = None) -> Run:
        """Read a run folder; `model_factory` rebuilds a network that is not difflab's U-Net."""
        folder = RunFolder(path).require_run()
        config = folder.read_config()
        meta, spec = folder.read_meta(), folder.read_spec(config)
        model = build(spec, model_factory)
        state = folder.load_weights(weights, expect=model.state_dict())  # names, shapes, dtypes, finite: before use
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise UserError(f"{folder.weights_path(weights)} does not fit model.json ({first})") from None
        model.eval().requires_grad_(False).to(device)
        run = cls(folder.path, config, model, tuple(meta.get("class_names", ())), meta.get("class_prompts"))
        run._model_factory = model_factory
        return run

    @property
    def spec(self):
        return self.model.spec

    def check_samplable(self) -> None:
        """A denoise run is one-step, time-free: the sampler's ε̂(x_t, t) does not exist for it."""
        if not self.spec.samplable:
            raise UserError(f"{self.path} is a single-step denoiser (--objective denoise), not a diffusion model; "
                            "fix: use `difflab edit denoise-ood` on it, or sample from a v/eps/x0 run")

    @property
    def is_text(self) -> bool:
        return self.spec.is_text

    @property
    def num_classes(self) -> int:
        """Classes `--label` can name; for a text run, the dataset's classes (each stands for its first caption)."""
        return self.spec.num_classes or (len(self.class_prompts or ()) if self.is_text else 0)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def condition(self, labels=None, prompts=None, *, n: int | None = None) -> Condition:
        """What the model is conditioned on: class ids, prompt embeddings (text runs; there `labels` stand
        for each class's first training caption), or `n` unconditional images."""
        if prompts is not None and labels is not None:
            raise UserError("give labels or prompts, not both")
        if prompts is not None:
            if not self.is_text:
                raise UserError(f"{self.path} is not a text-conditional run; fix: --label instead of --prompt, or "
                                "train with --conditioning text")
            return Condition.text(self.embed_prompts(list(prompts)))
        if labels is None:
            if n is None or n < 1:
                raise UserError(f"number of images must be at least 1, got {n}")
            return Condition.unconditional(n)
        if not self.is_text:
            return Condition.classes(labels, self.spec.num_classes)
        labels = Condition.classes(labels, self.num_classes).values
        return Condition.text(self.embed_prompts([self.class_prompts[i][0] for i in labels.tolist()]))

    def embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        """`(N, L, D)` prompt embeddings, cached per prompt (memory and disk)."""
        from difflab.text.prompts import PromptEmbedder

        if not prompts:
            raise UserError("no prompt given; fix: --prompt \"a handwritten seven\"")
        if self._embedder is None:
            self._embedder = PromptEmbedder(self.config.text_encoder)
        return self._embedder(prompts).to(self.device)

    def sampler(self, **overrides) -> Sampler:
        """The run's default sampler (config.json's solver, steps and guidance settings), with any setting
        overridden (`Sampler`'s fields; None keeps the run's). A run trained before guide networks existed
        has no guide.safetensors: its default autoguidance falls back to CFG at the same scale (and none on top)."""
        c = self.config
        has_guide = self.guide is not None  # loaded here, once; a diffusers pipeline has none
        method = c.guidance_method if c.guidance_method != "auto" or has_guide else "cfg"
        chosen = overrides.get("guidance_method") or method  # autoguidance alone (auto) takes its strength from w
        auto = c.autoguidance if has_guide and chosen == "cfg" else 1.0
        sampler = Sampler(c.solver, c.sample_steps, c.guidance, method, c.guidance_interval, c.guidance_rescale,
                          autoguidance=auto, redraws=c.redraws).replace(**overrides)
        self._check_ignored(sampler, overrides)
        return sampler

    def _check_ignored(self, sampler: Sampler, overrides: dict) -> None:
        """Settings that would be silently ignored: refused when they cannot mean anything, else one warning."""
        if sampler.eta and sampler.solver != "ddim":
            raise UserError(f"--eta {sampler.eta:g} only changes the DDIM solver, and this samples with "
                            f"{sampler.solver}; fix: add --solver ddim, or drop --eta")
        if overrides.get("guidance") is not None and not self.num_classes and sampler.guidance_method == "cfg":
            self._warn(f"--guidance {sampler.guidance:g} has no effect: {self.path} is unconditional (no class or "
                       "prompt to guide towards); fix: drop --guidance")
        folder = getattr(self, "folder", None)  # a diffusers pipeline (interop/pipeline.py) has none
        distilled = folder.read_distill() if folder is not None and folder.path.is_dir() else None
        steps = distilled.get("student_steps") if distilled else None
        if steps is not None and (sampler.steps != steps or sampler.solver != "ddim"):
            self._warn(f"{self.path} was distilled for {steps} DDIM steps; sampling it with {sampler.steps} "
                       f"{sampler.solver} steps gives poorer images; fix: drop --steps and --solver")

    def _warn(self, line: str) -> None:
        """One line on stderr, once per run object (a long job samples many times)."""
        warned = self.__dict__.setdefault("_warned", set())
        if line not in warned:
            warned.add(line)
            print(f"difflab: warning: {line}", file=sys.stderr, flush=True)

    @property
    def guide(self) -> torch.nn.Module | None:
        """The weaker network autoguidance steers away from (an early EMA snapshot, `guide.safetensors`);
        None when the run has none. Loaded on first use."""
        if self._guide is None and self.folder.has_weights("guide"):
            guide = build(self.spec, self._model_factory)
            guide.load_state_dict(self.folder.load_weights("guide", expect=guide.state_dict()))
            self._guide = guide.eval().requires_grad_(False).to(self.device)
        return self._guide

    @property
    def filter(self) -> SampleFilter | None:
        """The classifier whose rejects are drawn again (`filter.safetensors` + `filter.json`, trained at the end
        of training); None when the run has none. Loaded on first use."""
        if self._filter is False:
            try:
                self._filter = self._load_filter()
            except UserError as e:  # whatever is wrong with it, the same two ways out
                problem = str(e).split("; fix:")[0].split("; the run folder is damaged")[0]
                raise UserError(f"the run's sample filter cannot be used: {problem}; fix: sample without it "
                                f"(--redraws 0), or delete {self.path}/filter.json and filter.safetensors and "
                                f"`difflab train --resume {self.path}` trains it again") from None
        return self._filter

    def _load_filter(self) -> SampleFilter | None:
        info = self.folder.read_filter() if self.folder.path.is_dir() else None
        if info is None:
            return None
        from difflab.nn.judge import JudgeNet

        try:
            net = JudgeNet(**info["model"])
        except TypeError:
            raise UserError(f"{self.path / 'filter.json'}: its network arguments are not a JudgeNet's") from None
        net.load_state_dict(self.folder.load_weights("filter", expect=net.state_dict()))
        return SampleFilter(net.eval(), float(info["threshold"]), float(info.get("keep", 0)),
                            float(info.get("accuracy", 0)))

    def sample(self, labels=None, *, prompts=None, n: int | None = None, seed: int = 0, callback=None,
               tally: Redraws | None = None, **settings) -> torch.Tensor:
        """Images `(N, C, H, W)` in [-1, 1]; `labels` class ids, `prompts` texts (text runs), or `n` unconditional.
        The run's filter (if any, and `redraws` > 0) draws again what it rejects; `tally` counts those."""
        return torch.cat([images for _, images in self.sample_chunks(labels, prompts=prompts, n=n, seed=seed,
                                                                     callback=callback, tally=tally, **settings)])

    def sample_chunks(self, labels=None, *, prompts=None, n: int | None = None, seed: int = 0, chunk_size: int = 500,
                      callback=None, tally: Redraws | None = None, **settings) -> Iterator[tuple[Condition, torch.Tensor]]:
        """`sample` as a lazy iterator of `(Condition of the chunk, images (b, C, H, W))`, `b <= chunk_size`:
        the same images for the same seed, with only one chunk in memory at a time."""
        self.check_samplable()
        sampler = self.sampler(seed=seed, **settings)
        return sampler.chunks(self.model, self.alphas_cumprod, self.condition(labels, prompts, n=n),
                              batch_size=chunk_size, callback=callback,
                              guide=self.guide if sampler.needs_guide else None,
                              filter=self.filter if sampler.redraws else None, tally=tally)

"""`Run`: a trained run folder as a Python object — load it, sample from it, draw its trajectory."""

from __future__ import annotations

from pathlib import Path

import torch

from difflab.diffusion import NoiseSchedule
from difflab.errors import UserError
from difflab.generate import SamplerSettings, class_labels, generate, generate_chunks
from difflab.nn.unet import UNet
from difflab.report.images import grid, save_grid, save_png
from difflab.training import checkpoint as ckpt
from difflab.training.config import DENOISE, TrainConfig


class Run:
    """A run folder: `config.json`, `model.json`, `ema.safetensors` (sampled from by default)."""

    def __init__(self, path: Path, config: TrainConfig, model: UNet, class_names: tuple[str, ...],
                 class_prompts: list[list[str]] | None = None):
        self.path, self.config, self.model, self.class_names = Path(path), config, model, class_names
        self.class_prompts = class_prompts  # text runs: per class, the training captions `--label k` stands for
        self.alphas_cumprod = NoiseSchedule(config.schedule, config.num_timesteps).alphas_cumprod
        self._embedder = None

    @classmethod
    def load(cls, path: str | Path, *, weights: str = "ema", device: str = "cpu") -> "Run":
        path = Path(path)
        if not path.is_dir():
            raise UserError(f"run folder {path} not found; fix: give the folder that `difflab train` printed")
        config = TrainConfig.load(path / "config.json")
        meta = ckpt.read_json(path / "model.json")
        try:
            model = UNet(**meta["model"])
        except (TypeError, KeyError) as err:
            raise UserError(f"{path / 'model.json'} does not describe a difflab U-Net ({err})") from None
        state = ckpt.load_tensors(path / f"{weights}.safetensors")
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise UserError(f"{path / (weights + '.safetensors')} does not fit model.json ({first})") from None
        model.eval().requires_grad_(False).to(device)
        return cls(path, config, model, tuple(meta["class_names"]), meta.get("class_prompts"))

    def check_samplable(self) -> None:
        """A denoise run is one-step, time-free: the sampler's ε̂(x_t, t) does not exist for it."""
        if self.config.objective == DENOISE:
            raise UserError(f"{self.path} is a single-step denoiser (--objective denoise), not a diffusion model; "
                            "fix: use `difflab edit denoise-ood` on it, or sample from a v/eps/x0 run")

    @property
    def is_text(self) -> bool:
        return bool(self.model.config.get("text_dim", 0))

    @property
    def num_classes(self) -> int:
        """Classes `--label` can name; for a text run, the dataset's classes (each stands for its first caption)."""
        return self.model.config["num_classes"] or (len(self.class_prompts or ()) if self.is_text else 0)

    def condition(self, labels=None, prompts=None) -> torch.Tensor | None:
        """What the model takes as `cond`: class ids `(N,)`, or prompt embeddings `(N, L, D)` for a text run.

        For a text run, `labels` stand for each class's first training caption."""
        if prompts is not None and labels is not None:
            raise UserError("give labels or prompts, not both")
        if prompts is not None:
            if not self.is_text:
                raise UserError(f"{self.path} is not a text-conditional run; fix: --label instead of --prompt, or "
                                "train with --conditioning text")
            return self.embed_prompts(list(prompts))
        if labels is None or not self.is_text:
            return labels
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        k = self.num_classes
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= k):
            raise UserError(f"label out of range for this {k}-class text run; use 0..{k - 1}, or --prompt TEXT")
        return self.embed_prompts([self.class_prompts[i][0] for i in labels.tolist()])

    def embed_prompts(self, prompts: list[str]) -> torch.Tensor:
        """`(N, L, D)` prompt embeddings, cached per prompt (memory and disk)."""
        from difflab.text.prompts import PromptEmbedder

        if not prompts:
            raise UserError("no prompt given; fix: --prompt \"a handwritten seven\"")
        if self._embedder is None:
            self._embedder = PromptEmbedder(self.config.text_encoder)
        return self._embedder(prompts).to(next(self.model.parameters()).device)

    def settings(self, *, solver=None, steps=None, guidance=None, eta: float = 0.0, precision: str = "auto") -> SamplerSettings:
        c = self.config
        return SamplerSettings(solver or c.solver, steps or c.sample_steps, c.guidance if guidance is None else guidance,
                               eta, precision)

    def sample(self, labels=None, *, prompts=None, n: int | None = None, seed: int = 0, callback=None,
               **settings) -> torch.Tensor:
        """Images `(N, C, H, W)` in [-1, 1]; `labels` class ids, `prompts` texts (text runs), or `n` unconditional."""
        self.check_samplable()
        generator = torch.Generator().manual_seed(seed)
        return generate(self.model, self.alphas_cumprod, self.config.objective, self.condition(labels, prompts), n=n,
                        settings=self.settings(**settings), generator=generator, callback=callback)

    def sample_chunks(self, labels=None, *, prompts=None, n: int | None = None, seed: int = 0, chunk_size: int = 500,
                      callback=None, **settings):
        """`sample` as a lazy iterator of `(cond (b, ...) or None, images (b, C, H, W))`, `b <= chunk_size`:
        the same images for the same seed, with only one chunk in memory at a time."""
        self.check_samplable()
        generator = torch.Generator().manual_seed(seed)
        return generate_chunks(self.model, self.alphas_cumprod, self.config.objective, self.condition(labels, prompts), n=n,
                               settings=self.settings(**settings), generator=generator, callback=callback,
                               batch_size=chunk_size)


def write_class_grid(model: UNet, config: TrainConfig, num_classes: int, path: Path, *, seed: int = 0,
                     class_prompts: list[list[str]] | None = None) -> Path:
    """A 10x10 grid, one row per class (or 100 unconditional samples), with the run's sampler.

    A text model draws each row from its class's first training caption (`class_prompts`)."""
    alphas_cumprod = NoiseSchedule(config.schedule, config.num_timesteps).alphas_cumprod
    settings = SamplerSettings(config.solver, config.sample_steps, config.guidance)
    labels = class_labels(num_classes, 10) if num_classes and config.conditional else None
    if labels is not None and class_prompts is not None:
        from difflab.text.prompts import PromptEmbedder

        device = next(model.parameters()).device
        labels = PromptEmbedder(config.text_encoder)([class_prompts[i][0] for i in labels.tolist()]).to(device)
    images = generate(model, alphas_cumprod, config.objective, labels, n=100, settings=settings,
                      generator=torch.Generator().manual_seed(seed))
    return save_grid(images, path, nrow=10)


def write_trajectory(run: Run, path: Path, *, columns: int = 8, seed: int = 0) -> Path:
    """Noise → image: x_t at `columns` evenly spaced steps of the default sampler, one row per class."""
    labels = class_labels(run.num_classes, 1) if run.num_classes else None
    steps = run.config.sample_steps
    keep = {round((i + 1) * steps / (columns - 1)) - 1 for i in range(columns - 1)}  # ends at the clean image
    frames: list[torch.Tensor] = []

    def record(_, step):
        if step.index in keep:
            frames.append(step.x.cpu())

    start = torch.Generator().manual_seed(seed)
    n = None if labels is not None else 10
    x_T = torch.randn((len(labels) if labels is not None else n, run.model.config["in_channels"],
                       run.model.config["image_size"], run.model.config["image_size"]), generator=start)
    run.sample(labels, n=n, seed=seed, callback=record)
    columns_first = torch.stack([x_T, *frames], dim=1)  # (rows, columns, C, H, W)
    return save_png(grid(columns_first.flatten(0, 1), columns_first.shape[1]), path, scale=2)

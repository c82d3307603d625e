"""`TrainConfig`: everything that defines a training run, saved as `config.json` in its folder.

Flat on purpose: every key can be set from the CLI (`--lr 1e-3`), a TOML/JSON file or a sweep.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from difflab.diffusion import OBJECTIVES, SCHEDULES, SOLVERS
from difflab.errors import UserError

DENOISE = "denoise"  # not a diffusion objective: a time-free single-step denoiser x + sigma*eps -> x (no sampling)
CONDITIONINGS = ("class", "text")
DEFAULT_MINUTES = 3.0  # ~90k images on 2 CPU cores; 60k already give ~99% judge accuracy (benchmarks/recipe_search.py)


@dataclass(frozen=True)
class TrainConfig:
    # data
    dataset: str = "mnist5k"  # embedded real digits: works offline
    data_dir: str | None = None  # where IDX / CIFAR / folder files live (else the cache)
    image_size: int | None = None  # resize folder datasets; None keeps the source size
    conditional: bool = True  # conditional with a null branch for CFG (False: unconditional)
    conditioning: str = "class"  # class: labels; text: captions (class templates or metadata.jsonl text)
    text_encoder: str = "minilm"  # text only: the embedded all-MiniLM-L6-v2, or a folder of local HF weights (CLIP)
    # model (the U-Net's constructor arguments)
    channels: tuple[int, ...] = (16, 32, 64)  # 0.5 M params; 28 -> 14 -> 7 px; fastest to 99% judge accuracy on CPU
    blocks_per_level: int = 1
    attention_levels: tuple[int, ...] = ()
    cross_attention_levels: tuple[int, ...] | None = None  # text only; None: the lowest level (7 px; 14 px cost +45%/step)
    dropout: float = 0.0
    # diffusion
    schedule: str = "cosine"
    num_timesteps: int = 1000
    objective: str = "v"  # with the cosine schedule, eps-prediction reached 61-78% judge accuracy where v reached 99.8%
    sigma: float = 0.5  # objective "denoise" only: the one noise level x + sigma*eps it learns to undo
    cond_dropout: float = 0.1  # fraction of labels (captions) replaced by the null class (empty prompt): CFG training
    # optimisation
    batch_size: int = 64  # more updates per image seen: 99.3% vs 95.5% (batch 128) after 30k images
    lr: float = 2e-3  # AdamW; small U-Nets on 28x28 tolerate a high rate with warm-up and clipping
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * min_lr_ratio
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # with warm-up: min(decay, (1 + step) / (10 + step))
    precision: str = "auto"  # auto | fp32 | bf16 (autocast of the forward pass); auto: bf16 on CPUs with native bf16 (1.5x)
    compile: bool = False  # torch.compile the network for training (slow first step; CPU: 0.98x measured)
    # budget: the first limit reached stops training; with none given, DEFAULT_MINUTES applies
    steps: int | None = None
    epochs: float | None = None
    minutes: float | None = None
    # bookkeeping
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    log_every: int = 25  # steps between metrics.jsonl lines
    checkpoint_minutes: float = 1.0  # resumable state at most this old when a run is killed
    num_sample_grids: int = 4  # sample grids written over training (plus the final one)
    tensorboard: bool = False  # scalars, grids and config to RUN/tb/ (pip install 'difflab[tensorboard]')
    wandb: bool = False  # the same to Weights & Biases (pip install 'difflab[wandb]')
    mlflow: bool = False  # the same to MLflow (pip install 'difflab[mlflow]')
    # sampling defaults for this run (used by `difflab sample` and the end-of-run figure)
    solver: str = "dpm++"
    sample_steps: int = 6  # DPM-Solver++(2M): 4-8 steps are within 5% of 100 on FD (benchmarks/sampling.py); 6 keeps a margin
    guidance: float = 3.0

    def __post_init__(self) -> None:
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("objective", self.objective, OBJECTIVES + (DENOISE,))
        if not 0 < self.sigma <= 10:
            raise UserError(f"--sigma must be in (0, 10], got {self.sigma}")
        _check_choice("solver", self.solver, SOLVERS)
        _check_choice("device", self.device, ("auto", "cpu", "cuda"))
        _check_choice("precision", self.precision, ("auto", "fp32", "bf16"))
        _check_choice("conditioning", self.conditioning, CONDITIONINGS)
        if self.conditioning == "text" and not self.conditional:
            raise UserError("--conditioning text needs a conditional model; fix: drop --no-conditional")
        for name in ("steps", "epochs", "minutes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"--{name} must be positive, got {value}")
        if self.steps is None and self.epochs is None and self.minutes is None:
            object.__setattr__(self, "minutes", DEFAULT_MINUTES)
        for name in ("batch_size", "num_timesteps", "sample_steps", "log_every"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.cond_dropout < 1:
            raise UserError(f"--cond-dropout must be in [0, 1), got {self.cond_dropout}")
        if self.guidance < 0:
            raise UserError(f"--guidance must be >= 0, got {self.guidance}")
        if self.lr <= 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "attention_levels", tuple(int(c) for c in self.attention_levels))
        if self.cross_attention_levels is not None:
            object.__setattr__(self, "cross_attention_levels", tuple(int(c) for c in self.cross_attention_levels))

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def save(self, path: Path) -> None:
        from difflab.training.checkpoint import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "config") -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{source}: unknown config key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        try:
            return cls(**data)
        except TypeError as err:
            raise UserError(f"{source}: {err}") from None

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        """Read a `.json` or `.toml` config (a run's `config.json` included)."""
        path = Path(path)
        try:
            text = path.read_text()
            data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except FileNotFoundError:
            raise UserError(f"config file {path} not found") from None
        except (json.JSONDecodeError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"config file {path} is not valid {path.suffix[1:] or 'JSON'}: {err}") from None
        if not isinstance(data, dict):
            raise UserError(f"config file {path} must hold a table of keys, got {type(data).__name__}")
        return cls.from_dict(data, source=str(path))


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise UserError(f"unknown {name} {value!r}; use one of {', '.join(choices)}")


def config_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(TrainConfig))


__all__ = ["TrainConfig", "config_fields"]

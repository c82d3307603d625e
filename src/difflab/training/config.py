"""`TrainConfig`: everything that defines a training run, saved as `config.json` in its folder.

Flat on purpose: every key can be set from the CLI (`--lr 1e-3`), a TOML/JSON file or a sweep.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from difflab.diffusion import OBJECTIVES, SCHEDULES, SOLVERS
from difflab.errors import UserError
from difflab.nn.spec import ModelSpec

DENOISE = "denoise"  # not a diffusion objective: a time-free single-step denoiser x + sigma*eps -> x (no sampling)
CONDITIONINGS = ("class", "text")
RESUMABLE_CHANGES = frozenset({  # keys a resume may change: budget, bookkeeping, speed, sampling defaults
    "steps", "epochs", "minutes", "device", "log_every", "checkpoint_minutes", "num_sample_grids",
    "solver", "sample_steps", "guidance", "guidance_method", "guidance_interval", "guidance_rescale", "autoguidance", "redraws",
    "filter_keep", "tensorboard", "wandb", "mlflow", "precision", "compile"})
DEFAULT_STEPS = 2000  # optimizer steps when no budget is given: the same model on every machine, busy or idle
# (a wall-clock default gave ~1,300 steps on a quiet 2-core CPU, 14 on a busy one). At 1,500 steps the default
# sampler's FD was 2.65x the real floor, at 2,000 2.44x (benchmarks/RESULTS.md, "The default model")
EARLIER_DEFAULTS = {  # keys added after runs were first saved, with the value that reproduces such a run
    "min_snr": 0.0, "guidance_method": "cfg", "guidance_interval": (0.0, 1.0), "guidance_rescale": 0.0,
    "autoguidance": 1.0, "recipe": "none", "filter_keep": 0.0, "redraws": 0}


@dataclass(frozen=True)
class TrainConfig:
    # data
    dataset: str = "mnist5k"  # embedded real digits: works offline
    data_dir: str | None = None  # where IDX / CIFAR / folder files live (else the cache)
    image_size: int | None = None  # emoji and folder datasets: the side; None: emoji 32, a folder its most common
    # size's shorter side up to 64 px (data/folder.py)
    conditional: bool = True  # conditional with a null branch for CFG (False: unconditional)
    conditioning: str = "class"  # class: labels; text: captions (class templates or metadata.jsonl text)
    text_encoder: str = "minilm"  # text only: the embedded all-MiniLM-L6-v2, or a folder of local HF weights (CLIP)
    recipe: str = "auto"  # the unset fields below come from the data's size, channels and count (training/recipes.py);
    # none: these defaults as they are; or a recipe's name. config.json holds the name chosen and its values
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
    min_snr: float = 5.0  # Min-SNR-γ loss weighting (Hang et al. 2023), γ = this; 0: plain MSE. At 2,000 steps γ = 5
    # gave recall 0.91 at w = 1 (plain: 0.82), so guidance can buy accuracy without collapsing (benchmarks/RESULTS.md)
    cond_dropout: float = 0.1  # fraction of labels (captions) replaced by the null class (empty prompt): CFG training
    # optimisation
    batch_size: int = 64  # more updates per image seen: 99.3% vs 95.5% (batch 128) after 30k images
    lr: float = 2e-3  # AdamW; small U-Nets on 28x28 tolerate a high rate with warm-up and clipping
    weight_decay: float = 0.0
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05  # cosine decay ends at lr * min_lr_ratio
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # with warm-up: min(decay, (1 + step) / (10 + step))
    guide_at: float = 0.5  # the EMA weights at this fraction of the budget become the autoguidance guide network
    # (of 12.5/25/37.5/50%, 50% gave the lowest FD at the same accuracy)
    precision: str = "auto"  # auto | fp32 | bf16 (autocast of the forward pass); auto: bf16 on CPUs with native bf16 (1.5x)
    compile: bool = False  # torch.compile the network for training (slow first step; CPU: 0.98x measured)
    # budget: the first limit reached stops training; with none given, DEFAULT_STEPS applies (--minutes: the user's choice)
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
    guidance: float = 1.3  # CFG on the interval below, then the filter (redraws): 100% judge accuracy at FD 1.23x
    # the floor, recall 0.86 (judge v3; benchmarks/RESULTS.md). Guidance alone needed w >= 2 for 99%, at FD >= 2.1x:
    # it pulls every sample to its class's mode; w = 3 on every step gave 100% at 5x (one digit drawn ten times)
    guidance_method: str = "cfg"  # cfg (classifier-free) | auto (autoguidance by the run's guide network)
    guidance_interval: tuple[float, ...] = (0.5, 1.0)  # guide only where t/T lies in [lo, hi] (Kynkäänniemi et al.
    # 2024): the class is chosen at high noise; guiding the low-noise half only exaggerates strokes (FD 3.4x)
    guidance_rescale: float = 0.0  # CFG rescale φ (Lin et al. 2024); 0: off
    autoguidance: float = 1.0  # cfg only: + (w_auto − 1)(ε_c − ε_guide) on every step, ε_guide from guide.safetensors
    # (the EMA at guide_at); 1: off. CFG 1.6 + autoguidance 3 was the default before the filter: 98.9%, FD 2.12x
    redraws: int = 3  # images the filter classifier rejects are drawn again, at most this many times; 0: off
    filter_keep: float = 0.98  # the filter (sampling/filter.py), trained at the end of training, passes this fraction
    # of held-out real images (mnist5k: p(class) >= 0.80); 0: no filter

    def __post_init__(self) -> None:
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("objective", self.objective, OBJECTIVES + (DENOISE,))
        if not 0 < self.sigma <= 10:
            raise UserError(f"--sigma must be in (0, 10], got {self.sigma}")
        _check_choice("solver", self.solver, SOLVERS)
        _check_choice("device", self.device, ("auto", "cpu", "cuda"))
        _check_choice("precision", self.precision, ("auto", "fp32", "bf16"))
        _check_choice("conditioning", self.conditioning, CONDITIONINGS)
        from difflab.training.recipes import AUTO, NAMES, NONE

        _check_choice("recipe", self.recipe, (AUTO, NONE, *NAMES))
        from difflab.data.sources import check_options

        check_options(self.dataset, data_dir=self.data_dir, image_size=self.image_size)
        if self.conditioning == "text" and not self.conditional:
            raise UserError("--conditioning text needs a conditional model; fix: drop --no-conditional")
        for name in ("steps", "epochs", "minutes"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise UserError(f"--{name} must be positive, got {value}")
        if self.steps is None and self.epochs is None and self.minutes is None:
            object.__setattr__(self, "steps", DEFAULT_STEPS)
        for name in ("batch_size", "num_timesteps", "sample_steps", "log_every"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.cond_dropout < 1:
            raise UserError(f"--cond-dropout must be in [0, 1), got {self.cond_dropout}")
        if self.guidance < 0:
            raise UserError(f"--guidance must be >= 0, got {self.guidance}")
        if self.lr <= 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        from difflab.sampling.sampler import GUIDANCE_METHODS, parse_interval

        _check_choice("guidance_method", self.guidance_method, GUIDANCE_METHODS)
        object.__setattr__(self, "guidance_interval", parse_interval(self.guidance_interval))
        for name, (low, high) in RANGES.items():  # NaN, inf and absurd sizes: refused here, not mid-run
            _check_range(name, getattr(self, name), low, high)
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        object.__setattr__(self, "attention_levels", tuple(int(c) for c in self.attention_levels))
        if self.cross_attention_levels is not None:
            object.__setattr__(self, "cross_attention_levels", tuple(int(c) for c in self.cross_attention_levels))
        if not 1 <= len(self.channels) <= 6 or not all(1 <= c <= 4096 for c in self.channels):
            raise UserError(f"--channels must be 1 to 6 widths in 1..4096, got {self.channels}")

    def model_spec(self, image_shape: tuple[int, int, int], num_classes: int, *, text_dim: int = 0) -> ModelSpec:
        """The network this config asks for on data of `image_shape`; `text_dim` > 0 makes it text-conditional
        (cross-attention) instead of class-conditional."""
        channels, size, _ = image_shape
        text = self.conditional and self.conditioning == "text"
        cross = self.cross_attention_levels
        return ModelSpec(
            in_channels=channels, image_size=size, channels=self.channels, blocks_per_level=self.blocks_per_level,
            attention_levels=self.attention_levels, num_classes=num_classes if self.conditional and not text else 0,
            dropout=self.dropout, time_conditioning=self.objective != DENOISE,  # the denoiser never sees t
            text_dim=text_dim if text else 0, prediction=self.objective,
            cross_attention_levels=((len(self.channels) - 1,) if cross is None else cross) if text else (),
        )

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def save(self, path: Path) -> None:
        from difflab.run.files import write_json

        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "config") -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{source}: unknown config key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        try:
            config = cls(**data)
        except TypeError as err:
            raise UserError(f"{source}: {err}") from None
        object.__setattr__(config, "given_keys", frozenset(data))  # not a field: `replace` drops it, as it should;
        return config  # a recipe fills only the keys not given (training/recipes.py), e.g. a sweep's [base] + run

    @classmethod
    def load(cls, path: str | Path, *, saved_run: bool = False) -> TrainConfig:
        """Read a `.json` or `.toml` config; `saved_run`: a run's `config.json`, whose missing keys take
        `EARLIER_DEFAULTS` (the run was trained and is sampled as it was). The keys the file gives are kept as
        `given_keys`: a recipe fills only the others (`training/recipes.py`)."""
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
        if saved_run:
            data = {**{k: v for k, v in EARLIER_DEFAULTS.items() if k not in data}, **data}
        return cls.from_dict(data, source=str(path))


RANGES = {  # every numeric field's accepted range, inclusive (None: no bound); checked at parse time
    "image_size": (1, 1024), "blocks_per_level": (1, 16), "dropout": (0.0, 0.99), "num_timesteps": (2, 100_000),
    "cond_dropout": (0.0, 0.99), "batch_size": (1, 65_536), "lr": (1e-12, 10.0), "weight_decay": (0.0, 10.0),
    "warmup_steps": (0, 10**9), "min_lr_ratio": (0.0, 1.0), "grad_clip": (1e-12, 1e6), "ema_decay": (0.0, 0.999999), "guide_at": (0.001, 1.0), "min_snr": (0.0, 1000.0),
    "steps": (1, 10**9), "epochs": (1e-9, 1e6), "minutes": (1e-9, 1e6), "seed": (0, 2**63 - 1),
    "log_every": (1, 10**9), "checkpoint_minutes": (0.0, 1e6), "num_sample_grids": (0, 1000),
    "sample_steps": (1, 1000), "guidance": (0.0, 100.0), "guidance_rescale": (0.0, 1.0), "autoguidance": (1.0, 100.0), "sigma": (1e-9, 10.0),
    "redraws": (0, 20), "filter_keep": (0.0, 0.999),
}


def _check_range(name: str, value, low, high) -> None:
    """One line naming the option, the value and the accepted range; None means "not set" for optional keys."""
    if value is None:
        return
    flag = "--" + name.replace("_", "-")
    integral = isinstance(low, int)
    if isinstance(value, bool) or not isinstance(value, int if integral else (int, float)):
        raise UserError(f"{flag} must be {'an integer' if integral else 'a number'}, got {value!r}")
    bounds = f"{low}..{high}" if integral else f"[{low:g}, {high:g}]"
    if math.isfinite(value) and value < low:
        raise UserError(f"{flag} must be at least {low:g} (accepted: {bounds}), got {value}")
    if not math.isfinite(value) or value > high:
        raise UserError(f"{flag} must be in {bounds}, got {value}")


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise UserError(f"unknown {name} {value!r}; use one of {', '.join(choices)}")


def config_diff(saved: dict, new: dict, may_change: frozenset[str] = RESUMABLE_CHANGES) -> list[str]:
    """`key: old -> new` for every key that differs and may not change (a resume's budget may)."""
    new = _as_resolved(saved, new)
    return [f"{k}: {v!r} -> {new.get(k)!r}" for k, v in saved.items() if k not in may_change and new.get(k) != v]


def _as_resolved(saved: dict, new: dict) -> dict:
    """`new` as its recipe would resolve it when it still says "auto" (a sweep's config against its run folder):
    the saved run's recipe fills the keys `new` leaves at their defaults, as `training/recipes.py` does."""
    from difflab.training.recipes import NAMES, by_name

    if new.get("recipe") != "auto" or saved.get("recipe") not in NAMES:
        return new
    defaults = TrainConfig().to_dict()
    fill = {k: list(v) if isinstance(v, tuple) else v for k, v in by_name(saved["recipe"]).values.items()
            if new.get(k) == defaults.get(k)}
    return {**new, **fill, "recipe": saved["recipe"]}


def config_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(TrainConfig))


__all__ = ["DEFAULT_STEPS", "RESUMABLE_CHANGES", "TrainConfig", "config_diff", "config_fields"]

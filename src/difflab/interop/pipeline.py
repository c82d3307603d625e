"""A local diffusers UNet + its scheduler config as a difflab `Run`, so every `Run` tool works on it.

`PipelineRun.load(DIR)` reads either the pipeline layout (`DIR/unet/`, `DIR/scheduler/`) or one
folder holding `config.json`, the weights and `scheduler_config.json`. The UNet may be
`diffusers.UNet2DModel` (any prediction type; a learned-variance output, 2×C channels, keeps its
first C) or difflab's exported `DifflabUNet2DModel`. ᾱ comes from the scheduler config, so the
schedule is the pretrained model's own. Text-conditioned UNets (DeepFloyd IF, Stable Diffusion's
`UNet2DConditionModel`) need prompt embeddings and are refused with a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from difflab.errors import UserError
from difflab.nn.spec import ModelSpec
from difflab.run import Run

OBJECTIVES = {"epsilon": "eps", "v_prediction": "v", "sample": "x0"}  # diffusers prediction_type -> ours


@dataclass(frozen=True)
class PipelineConfig:
    """The `Run.config` fields a pretrained model has: objective, schedule length, sampler defaults."""

    objective: str = "eps"
    num_timesteps: int = 1000
    solver: str = "dpm++"
    sample_steps: int = 20  # pretrained models were not tuned for 10 steps; 20 is a safe default
    guidance: float = 1.0  # plain UNet2DModels have no null class, so no CFG by default
    guidance_method: str = "cfg"  # no guide network is exported, so no autoguidance
    guidance_interval: tuple[float, ...] = (0.0, 1.0)  # CFG on every step unless the export says otherwise
    guidance_rescale: float = 0.0  # CFG rescale off unless the export says otherwise
    redraws: int = 0  # no filter classifier is exported
    schedule: str = "pretrained"  # ᾱ comes from the scheduler config, not a difflab schedule name
    dataset: str | None = None  # no judge is known for a pretrained model
    data_dir: str | None = None
    image_size: int | None = None
    conditional: bool = False


class DiffusersDenoiser(torch.nn.Module):
    """A `Denoiser` over a diffusers UNet: `model(x_t, t, cond)`; its `spec` holds what difflab's sampler
    reads (image shape, classes, prediction type); the network's own layout stays in the UNet's config."""

    def __init__(self, unet: torch.nn.Module, *, num_classes: int, has_null_class: bool, prediction: str) -> None:
        super().__init__()
        self.unet, self.has_null_class = unet, has_null_class
        size = unet.config.sample_size if hasattr(unet.config, "sample_size") else unet.config.image_size
        size = size[0] if isinstance(size, (list, tuple)) else size
        self.spec = ModelSpec(in_channels=unet.config.in_channels, image_size=int(size), num_classes=num_classes,
                              prediction=prediction)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        num_classes = self.spec.num_classes
        if cond is not None and not self.has_null_class and bool((cond >= num_classes).any()):
            raise UserError("this UNet has no null class, so no classifier-free guidance; fix: --guidance 1")
        if cond is None and num_classes and not self.has_null_class:
            raise UserError("this UNet is class-conditional; fix: give --label")
        out = self.unet(x, t, class_labels=cond).sample  # (B, C or 2C, H, W)
        return out[:, : x.shape[1]]  # learned-variance models append C variance channels


class PipelineRun(Run):
    """Duck-types `Run`: `.model`, `.config`, `.alphas_cumprod`, `.num_classes`, `.class_names`, `.sample()`."""

    guide = None  # no weaker network for autoguidance: the sampler refuses --guidance-method auto with a fix
    filter = None  # no filter classifier: every image is the first draw

    def __init__(self, path: Path, config: PipelineConfig, model: DiffusersDenoiser, class_names, alphas_cumprod):
        self.path, self.config, self.model, self.class_names = Path(path), config, model, tuple(class_names)
        self.alphas_cumprod, self.class_prompts, self._embedder = alphas_cumprod, None, None

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu", **_) -> PipelineRun:
        path = Path(path)
        try:
            import diffusers  # noqa: F401
        except ImportError:
            raise UserError("--pipeline needs diffusers; fix: pip install 'difflab[interop]'") from None
        unet_dir, scheduler_file = _find_parts(path)
        scheduler_cfg = json.loads(scheduler_file.read_text())
        objective = OBJECTIVES.get(scheduler_cfg.get("prediction_type", "epsilon"))
        if objective is None:
            raise UserError(f"{scheduler_file}: prediction_type {scheduler_cfg['prediction_type']!r} is not "
                            f"supported; use one of {', '.join(OBJECTIVES)}")
        unet, has_null = _load_unet(unet_dir)
        num_classes = int(getattr(unet.config, "num_classes", 0) or getattr(unet.config, "num_class_embeds", 0) or 0)
        model = DiffusersDenoiser(unet, num_classes=num_classes, has_null_class=has_null, prediction=objective)
        model.eval().requires_grad_(False).to(device)
        extra = _read_optional(path / "difflab.json")
        keys = ("solver", "sample_steps", "guidance", "guidance_interval", "guidance_rescale")
        defaults = {k: extra[k] for k in keys if k in extra}  # our own exports
        config = PipelineConfig(objective=objective, num_timesteps=int(scheduler_cfg.get("num_train_timesteps", 1000)),
                                conditional=num_classes > 0, **defaults)
        names = extra.get("class_names") or [str(i) for i in range(num_classes)]
        return cls(path, config, model, names, scheduler_alphas_cumprod(scheduler_cfg))


def scheduler_alphas_cumprod(scheduler_cfg: dict) -> torch.Tensor:
    """ᾱ exactly as diffusers builds it from this config (float64 for our solvers)."""
    from diffusers import DDPMScheduler

    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas")
    try:
        return DDPMScheduler(**{k: scheduler_cfg[k] for k in keys if k in scheduler_cfg}).alphas_cumprod.double()
    except NotImplementedError:
        raise UserError(f"beta_schedule {scheduler_cfg.get('beta_schedule')!r} is unknown to diffusers' DDPMScheduler; "
                        "fix: give trained_betas in scheduler_config.json") from None


def load_run_or_pipeline(run_path: str | Path | None, pipeline_dir: str | Path | None, *, device: str = "cpu") -> Run:
    """What `sample`/`edit` call: a difflab run folder, or (`--pipeline DIR`) a diffusers UNet folder."""
    if (run_path is None) == (pipeline_dir is None):
        raise UserError("give either a run folder or --pipeline DIR (a diffusers UNet folder), not both or neither")
    if pipeline_dir is not None:
        return PipelineRun.load(pipeline_dir, device=device)
    return Run.load(run_path, device=device)


def _find_parts(path: Path) -> tuple[Path, Path]:
    if not path.is_dir():
        raise UserError(f"pipeline folder {path} not found; fix: give a folder holding unet/ and scheduler/")
    for unet_dir, sched in ((path / "unet", path / "scheduler" / "scheduler_config.json"),
                            (path, path / "scheduler_config.json")):
        if (unet_dir / "config.json").is_file() and sched.is_file():
            return unet_dir, sched
    raise UserError(f"{path} holds no diffusers UNet with a scheduler; fix: give a folder with unet/config.json and "
                    "scheduler/scheduler_config.json (or both files side by side)")


def _load_unet(unet_dir: Path):
    """The UNet and whether it has difflab's null class (only difflab's exported model does).

    `low_cpu_mem_usage` is asked for only when accelerate is installed: diffusers defaults it to True and,
    without accelerate, warns on every load that it fell back to False."""
    from diffusers.utils import is_accelerate_available

    name = json.loads((unet_dir / "config.json").read_text()).get("_class_name")
    if name == "DifflabUNet2DModel":
        from difflab.interop.diffusers_model import DifflabUNet2DModel

        return DifflabUNet2DModel.from_pretrained(unet_dir, low_cpu_mem_usage=is_accelerate_available()), True
    if name != "UNet2DModel":
        raise UserError(f"{unet_dir}: unsupported model class {name!r}; --pipeline reads UNet2DModel or "
                        "DifflabUNet2DModel (text-conditioned UNets need prompt embeddings)")
    from diffusers import UNet2DModel

    return UNet2DModel.from_pretrained(unet_dir, low_cpu_mem_usage=is_accelerate_available()), False


def _read_optional(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}

"""`export_diffusers(run, out)`: a run folder → a folder that `diffusers` loads.

Layout (the diffusers pipeline layout, so `DiffusionPipeline.from_pretrained` reads it too):

    OUT/model_index.json                 DDPMPipeline: unet + scheduler (unconditional draws = null class)
    OUT/unet/config.json                 DifflabUNet2DModel constructor arguments
    OUT/unet/diffusion_pytorch_model.safetensors
    OUT/scheduler/scheduler_config.json  the run's schedule, objective and default solver
    OUT/difflab.json                     class names and the run's sampler defaults

Our U-Net is not expressible as `UNet2DModel` (FiLM blocks), so loading needs `difflab` installed
and imported: diffusers (0.42) only takes classes from modules already imported, so run
`import difflab.interop.diffusers_model` before `DiffusionPipeline.from_pretrained(OUT)`.
"""

from __future__ import annotations

import json
from pathlib import Path

from difflab.diffusion import NoiseSchedule
from difflab.errors import UserError

PREDICTION_TYPES = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}  # difflab objective -> diffusers
SCHEDULER_CLASSES = {"dpm++": "DPMSolverMultistepScheduler", "ddim": "DDIMScheduler", "ddpm": "DDPMScheduler"}
MODEL_CLASS = ["difflab.interop.diffusers_model", "DifflabUNet2DModel"]  # import that module before loading


def scheduler_config(config, solver: str | None = None) -> dict:
    """A diffusers scheduler config equal to the run's schedule and solver (tested step by step)."""
    solver = solver or config.solver
    common = dict(num_train_timesteps=config.num_timesteps, prediction_type=PREDICTION_TYPES[config.objective],
                  timestep_spacing="trailing")  # our solvers' spacing: starts at T-1
    if config.schedule == "cosine":
        common["beta_schedule"] = "squaredcos_cap_v2"  # Nichol & Dhariwal, β capped at 0.999, like ours
    else:  # ours rescales the linear betas by 1000/T; give them exactly
        common["trained_betas"] = NoiseSchedule(config.schedule, config.num_timesteps).betas.tolist()
    if solver == "dpm++":
        extra = dict(algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True,
                     final_sigmas_type="zero")  # note: diffusers' DPM does not clip x̂₀; our dpm++ does
    elif solver == "ddim":
        extra = dict(clip_sample=True, clip_sample_range=1.0, set_alpha_to_one=True)
    else:
        extra = dict(clip_sample=True, clip_sample_range=1.0, variance_type="fixed_small")
    return {"_class_name": SCHEDULER_CLASSES[solver], **common, **extra}


def export_diffusers(run, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write `run` (a loaded `difflab.run.Run`) as a diffusers folder; returns `out`."""
    from difflab.interop.diffusers_model import DifflabUNet2DModel

    out = Path(out)
    if run.config.objective not in PREDICTION_TYPES:
        raise UserError(f"{run.path} is a {run.config.objective!r} run; only diffusion runs (v/eps/x0) can be exported")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out} exists and is not empty; fix: give a new folder or --overwrite")
    model = DifflabUNet2DModel(**run.spec.network_kwargs(), prediction_type=PREDICTION_TYPES[run.config.objective])
    model.unet.load_state_dict(run.model.state_dict())
    model.save_pretrained(out / "unet", safe_serialization=True)
    (out / "scheduler").mkdir(parents=True, exist_ok=True)
    _write_json(out / "scheduler" / "scheduler_config.json", scheduler_config(run.config))
    _write_json(out / "model_index.json", {"_class_name": "DDPMPipeline", "unet": MODEL_CLASS,
                                           "scheduler": ["diffusers", SCHEDULER_CLASSES[run.config.solver]]})
    c = run.config
    _write_json(out / "difflab.json", {
        "class_names": list(run.class_names), "source_run": str(run.path), "objective": c.objective,
        "solver": c.solver, "sample_steps": c.sample_steps, "guidance": c.guidance,
        **({"class_prompts": run.class_prompts, "text_encoder": c.text_encoder} if run.is_text else {}),
        "requires": "pip install difflab, then `import difflab.interop.diffusers_model` before diffusers' from_pretrained",
    })
    return out


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")

"""`export_diffusers(run, out)`: a run folder → a folder that `diffusers` loads.

Layout (the diffusers pipeline layout, so `DiffusionPipeline.from_pretrained` reads it too):

    OUT/model_index.json                 DDPMPipeline (DDIMPipeline for a DDIM export): unet + scheduler
                                         (unconditional draws = null class)
    OUT/unet/config.json                 DifflabUNet2DModel constructor arguments
    OUT/unet/diffusion_pytorch_model.safetensors
    OUT/scheduler/scheduler_config.json  the run's schedule, objective and default solver
    OUT/difflab.json                     class names, the run's sampler defaults, `pipeline_call` arguments

The pipeline samples what difflab's sampler does (tested to ~1e-6): every scheduler clips x̂₀ to
[-1, 1] as our solvers do, and a DDIM pipeline must be called with `use_clipped_model_output=True`
(ε̂ re-derived from the clipped x̂₀, as our DDIM does; difflab.json's `pipeline_call` says so).
diffusers' DDIM steps to `t - T // steps`, so it matches ours when `steps` divides T.

Our U-Net is not expressible as `UNet2DModel` (FiLM blocks), so loading needs `difflab` installed
and imported: diffusers (0.42) only takes classes from modules already imported, so run
`import difflab.interop.diffusers_model` before `DiffusionPipeline.from_pretrained(OUT)`.
"""

from __future__ import annotations

from pathlib import Path

from difflab.diffusion import NoiseSchedule
from difflab.errors import UserError
from difflab.run import files

PREDICTION_TYPES = {"eps": "epsilon", "x0": "sample", "v": "v_prediction"}  # difflab objective -> diffusers
SCHEDULER_CLASSES = {"dpm++": "DPMSolverMultistepScheduler", "ddim": "DDIMScheduler", "ddpm": "DDPMScheduler"}
PIPELINE_CLASSES = {"dpm++": "DDPMPipeline", "ddim": "DDIMPipeline", "ddpm": "DDPMPipeline"}  # DDIM's passes its options
PIPELINE_CALL = {"ddim": {"eta": 0.0, "use_clipped_model_output": True}}  # pipe(**these): what our solver does
# diffusers' "dynamic thresholding" (Saharia et al. 2022): s = the ratio-quantile of |x̂₀| per image, clamped
# to [1, sample_max_value], then x̂₀ = clamp(x̂₀, -s, s) / s. With sample_max_value = 1, s = 1 whatever the
# quantile: a plain clamp of x̂₀ to [-1, 1], which is what our solvers do (ratio 1.0 only says "no percentile").
CLIP_X0 = dict(thresholding=True, dynamic_thresholding_ratio=1.0, sample_max_value=1.0)
MODEL_CLASS = ["difflab.interop.diffusers_model", "DifflabUNet2DModel"]  # import that module before loading


def scheduler_config(config, solver: str | None = None) -> dict:
    """A diffusers scheduler config equal to the run's schedule and solver (tested step by step)."""
    solver = solver or config.solver
    common = dict(num_train_timesteps=config.num_timesteps, prediction_type=PREDICTION_TYPES[config.objective],
                  timestep_spacing="trailing",  # our solvers' spacing: starts at T-1
                  **CLIP_X0)  # every solver of ours clips x̂₀ to [-1, 1]; DPM-Solver++ has no clip_sample
    if config.schedule == "cosine":
        common["beta_schedule"] = "squaredcos_cap_v2"  # Nichol & Dhariwal, β capped at 0.999, like ours
    else:  # ours rescales the linear betas by 1000/T; give them exactly
        common["trained_betas"] = NoiseSchedule(config.schedule, config.num_timesteps).betas.tolist()
    if solver == "dpm++":
        extra = dict(algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True,
                     final_sigmas_type="zero")  # the last step lands on x̂₀, as ours (t_next = -1)
    elif solver == "ddim":
        extra = dict(clip_sample=True, clip_sample_range=1.0, set_alpha_to_one=True)  # clip_sample: if thresholding is off
    else:
        extra = dict(clip_sample=True, clip_sample_range=1.0, variance_type="fixed_small")
    return {"_class_name": SCHEDULER_CLASSES[solver], **common, **extra}


def export_diffusers(run, out: str | Path, *, overwrite: bool = False, solver: str | None = None) -> Path:
    """Write `run` (a loaded `difflab.run.Run`) as a diffusers folder; returns `out`.

    `solver` (dpm++ | ddim | ddpm) picks the exported scheduler; None: the run's default solver."""
    from difflab.interop.diffusers_model import DifflabUNet2DModel

    out, solver = Path(out), solver or run.config.solver
    if solver not in SCHEDULER_CLASSES:
        raise UserError(f"unknown solver {solver!r}; use one of {', '.join(SCHEDULER_CLASSES)}")
    if run.config.objective not in PREDICTION_TYPES:
        raise UserError(f"{run.path} is a {run.config.objective!r} run; only diffusion runs (v/eps/x0) can be exported")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out} exists and is not empty; fix: give a new folder or --overwrite")
    model = DifflabUNet2DModel(**run.spec.network_kwargs(), prediction_type=PREDICTION_TYPES[run.config.objective])
    model.unet.load_state_dict(run.model.state_dict())
    model.save_pretrained(out / "unet", safe_serialization=True)
    (out / "scheduler").mkdir(parents=True, exist_ok=True)
    _write_json(out / "scheduler" / "scheduler_config.json", scheduler_config(run.config, solver))
    _write_json(out / "model_index.json", {"_class_name": PIPELINE_CLASSES[solver], "unet": MODEL_CLASS,
                                           "scheduler": ["diffusers", SCHEDULER_CLASSES[solver]]})
    c = run.config
    _write_json(out / "difflab.json", {
        "class_names": list(run.class_names), "source_run": str(run.path), "objective": c.objective,
        "solver": solver, "sample_steps": c.sample_steps, "guidance": c.guidance,
        "guidance_interval": list(c.guidance_interval), "guidance_rescale": c.guidance_rescale,  # CFG's settings
        "pipeline_call": PIPELINE_CALL.get(solver, {}),
        **({"class_prompts": run.class_prompts, "text_encoder": c.text_encoder} if run.is_text else {}),
        "requires": "pip install difflab, then `import difflab.interop.diffusers_model` before diffusers' from_pretrained",
    })
    return out


def _write_json(path: Path, data: dict) -> None:
    files.write_json(path, data)  # atomic: a full disk leaves the old file, not half of the new

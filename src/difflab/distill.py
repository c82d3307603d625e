"""`distill(run, steps=4)`: a trained run → a new run folder that samples in 1-8 DDIM steps.

The new folder is an ordinary run (config.json with solver "ddim", sample_steps K, guidance 1;
model.json; model/ema.safetensors; metrics.jsonl; samples/; eval/), so `difflab sample`,
`evaluate`, `report` and `Run.load` read it as they read any run. What was distilled from what,
and on which timesteps, is in its `distill.json`. The maths is in `difflab.training.distill`; each
round trains on the training loop (`difflab.training.rounds`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from difflab.data import load_dataset
from difflab.errors import UserError
from difflab.run import Run, RunFolder
from difflab.training.distill import DistillConfig, RoundTargets, frozen_copy, guided_estimate, nested_grids
from difflab.training.distributed import resolve_device
from difflab.training.rounds import run_round


def default_out(run_path: str | Path, steps: int) -> Path:
    run_path = Path(run_path).resolve()  # "." and "runs/x/" have a usable name once resolved
    return run_path.with_name(f"{run_path.name}-distilled-{steps}")


def default_teacher_steps(run_path: str | Path) -> int:
    """16 DDIM steps for a trained run; a distilled run's own step count, so distillation can go on from it
    (`difflab distill RUN-distilled-4 --steps 2` is one more round)."""
    info = RunFolder(run_path).read_distill()
    return int(info["student_steps"]) if info else DistillConfig.teacher_steps


def distill(run_path: str | Path, config: DistillConfig | None = None, *, out: str | Path | None = None,
            progress: bool = True, evaluate: bool = True) -> Run:
    """Progressive distillation of `run_path`'s guided sampler down to `config.steps` DDIM steps.

    After each round the folder holds a usable run at that round's step count, so an interrupted
    distillation keeps its last finished round."""
    from difflab.api import check_writable, finish_run

    config = DistillConfig() if config is None else config
    device = resolve_device(config.device)
    teacher_run = Run.load(run_path, device=str(device))
    if teacher_run.config.objective == "denoise":
        raise UserError(f"{teacher_run.path} is a single-step denoiser (--objective denoise); distillation needs a "
                        "diffusion run (v, eps or x0); fix: give a run trained with the default objective")
    out = Path(out) if out is not None else default_out(run_path, config.steps)
    if RunFolder(out).is_run():
        raise UserError(f"{out} already holds a run; fix: --out a new folder")
    check_writable(out)
    nested_grids(teacher_run.config.num_timesteps, config.steps)  # fails now, not after the first rounds
    data = _training_data(teacher_run, device)
    _distill_rounds(teacher_run, config, out, data, progress)
    return finish_run(out, evaluate=evaluate)


def _training_data(run: Run, device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The run's own training images `(N, C, H, W)` and their condition: class ids, or for a text run the
    embeddings of each image's class caption `(N, L, D)` (None for an unconditional run)."""
    c = run.config
    data = load_dataset(c.dataset, data_dir=c.data_dir, image_size=c.image_size)
    cond = run.condition(labels=data.labels).values if run.num_classes else None  # (N,) or (N, L, D)
    return data.images.to(device), cond.to(device) if cond is not None else None


def _distill_rounds(teacher_run: Run, config: DistillConfig, out: Path, data, progress: bool) -> torch.nn.Module:
    """Each round: teacher = the previous student (the guided run model first), student = its copy, trained
    on the training loop; metrics rows go to `out` as they come, the finished round's run after it."""
    c, abar = teacher_run.config, teacher_run.alphas_cumprod.to(next(teacher_run.model.parameters()).device)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    null = teacher_run.num_classes if teacher_run.num_classes else None
    guided = teacher_run.sampler(solver="ddim", precision="fp32")  # the run's own guidance: interval, autoguidance
    teacher = guided_estimate(teacher_run.model, abar, guided, null, guide=teacher_run.guide)
    student, rounds, folder = frozen_copy(teacher_run.model), [], RunFolder(out)
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.write_metrics([])  # rows of an earlier, interrupted distillation into `out` go
    for number, steps in enumerate(config.rounds, start=1):
        summary = run_round(student, RoundTargets(teacher, abar, c.num_timesteps, steps), c.objective, data, config,
                            generator, folder=folder, fields={"round": number, "student_steps": steps},
                            step_offset=sum(r["iterations"] for r in rounds), show_progress=progress,
                            label=f"round {number}/{len(config.rounds)}: {2 * steps} -> {steps} steps")
        rounds.append({"round": number, "teacher_steps": 2 * steps, "student_steps": steps,
                       "teacher_guidance": c.guidance if number == 1 else 1.0,
                       "teacher_autoguidance": guided.autoguidance if number == 1 else 1.0, **summary})
        _write_student(teacher_run, student, out, config, steps, rounds)
        teacher = guided_estimate(frozen_copy(student), abar, 1.0, null)
    return student


def _write_student(teacher_run: Run, student: torch.nn.Module, out: Path, config: DistillConfig, steps: int,
                   rounds: list[dict]) -> None:
    """A complete run folder sampling at `steps` DDIM steps, guidance 1 (weights first, config last)."""
    folder = RunFolder(out)
    folder.path.mkdir(parents=True, exist_ok=True)
    for sub in ("samples", "plots"):
        folder.sub(sub).mkdir(exist_ok=True)
    state = student.state_dict()
    folder.save_weights("model", state)
    folder.save_weights("ema", state)  # no EMA of the student: `Run.load` reads ema by default
    folder.write_meta(teacher_run.folder.read_meta())
    T = teacher_run.config.num_timesteps
    info = {"method": "progressive distillation (Salimans & Ho 2022)", "teacher": str(teacher_run.path.resolve()),
            "teacher_solver": "ddim", "teacher_steps": config.teacher_steps, "teacher_guidance": teacher_run.config.guidance,
            "teacher_guidance_interval": list(teacher_run.config.guidance_interval),
            "teacher_autoguidance": rounds[0].get("teacher_autoguidance", 1.0) if rounds else 1.0,
            "student_steps": steps, "timesteps": nested_grids(T, steps)[0], "rounds": rounds,
            "settings": dataclasses.asdict(config)}
    folder.write_distill(info)
    folder.write_config(teacher_run.config.replace(solver="ddim", sample_steps=steps, guidance=1.0,
                                                          autoguidance=1.0))  # guidance baked into the weights


__all__ = ["default_out", "default_teacher_steps", "distill"]

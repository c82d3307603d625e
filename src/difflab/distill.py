"""`distill(run, steps=4)`: a trained run → a new run folder that samples in 1-8 DDIM steps.

The new folder is an ordinary run (config.json with solver "ddim", sample_steps K, guidance 1;
model.json; model/ema.safetensors; metrics.jsonl; samples/; eval/), so `difflab sample`,
`evaluate`, `report` and `Run.load` read it as they read any run. What was distilled from what,
and on which timesteps, is in its `distill.json`. The maths is in `difflab.training.distill`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import torch

from difflab.data import load_dataset
from difflab.errors import UserError
from difflab.run import Run
from difflab.training import checkpoint as ckpt
from difflab.training.distill import (DistillConfig, RoundTargets, frozen_copy, guided_estimate, nested_grids,
                                      train_round)
from difflab.training.trainer import resolve_device


def default_out(run_path: str | Path, steps: int) -> Path:
    run_path = Path(run_path).resolve()  # "." and "runs/x/" have a usable name once resolved
    return run_path.with_name(f"{run_path.name}-distilled-{steps}")


def default_teacher_steps(run_path: str | Path) -> int:
    """16 DDIM steps for a trained run; a distilled run's own step count, so distillation can go on from it
    (`difflab distill RUN-distilled-4 --steps 2` is one more round)."""
    info = Path(run_path) / "distill.json"
    return int(ckpt.read_json(info)["student_steps"]) if info.is_file() else DistillConfig.teacher_steps


def distill(run_path: str | Path, config: DistillConfig = DistillConfig(), *, out: str | Path | None = None,
            progress: bool = True, evaluate: bool = True) -> Run:
    """Progressive distillation of `run_path`'s guided sampler down to `config.steps` DDIM steps.

    After each round the folder holds a usable run at that round's step count, so an interrupted
    distillation keeps its last finished round."""
    from difflab.api import check_writable, finish_run

    device = resolve_device(config.device)
    teacher_run = Run.load(run_path, device=str(device))
    if teacher_run.config.objective == "denoise":
        raise UserError(f"{teacher_run.path} is a single-step denoiser (--objective denoise); distillation needs a "
                        "diffusion run (v, eps or x0); fix: give a run trained with the default objective")
    out = Path(out) if out is not None else default_out(run_path, config.steps)
    if (out / "config.json").exists():
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
    cond = run.condition(labels=data.labels) if run.num_classes else None
    return data.images.to(device), cond.to(device) if cond is not None else None


def _distill_rounds(teacher_run: Run, config: DistillConfig, out: Path, data, progress: bool) -> torch.nn.Module:
    """Each round: teacher = the previous student (the guided run model first), student = its copy."""
    from tqdm.auto import tqdm

    c, abar = teacher_run.config, teacher_run.alphas_cumprod.to(next(teacher_run.model.parameters()).device)
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    null = teacher_run.num_classes if teacher_run.num_classes else None
    teacher = guided_estimate(teacher_run.model, c.objective, abar, c.guidance, null)
    student, rows, rounds = frozen_copy(teacher_run.model), [], []
    for number, steps in enumerate(config.rounds, start=1):
        targets = RoundTargets(teacher, abar, c.num_timesteps, steps)
        bar = tqdm(desc=f"round {number}/{len(config.rounds)}: {2 * steps} -> {steps} steps", unit="it",
                   disable=not progress, file=sys.stderr, dynamic_ncols=True)

        def log(row, _round=number, _steps=steps, _bar=bar):
            rows.append({"step": len(rows) + 1, "round": _round, "student_steps": _steps, **row})
            _bar.update(1)
            if len(rows) % 10 == 0:
                _bar.set_postfix_str(f"loss {row['loss']:.4f}", refresh=False)

        summary = train_round(student, targets, c.objective, data, config, generator, log)
        bar.close()
        rounds.append({"round": number, "teacher_steps": 2 * steps, "student_steps": steps,
                       "teacher_guidance": c.guidance if number == 1 else 1.0, **summary})
        _write_student(teacher_run, student, out, config, steps, rounds, rows)
        teacher = guided_estimate(frozen_copy(student), c.objective, abar, 1.0, null)
    return student


def _write_student(teacher_run: Run, student: torch.nn.Module, out: Path, config: DistillConfig, steps: int,
                   rounds: list[dict], rows: list[dict]) -> None:
    """A complete run folder sampling at `steps` DDIM steps, guidance 1 (weights first, config last)."""
    out.mkdir(parents=True, exist_ok=True)
    for sub in ("samples", "plots"):
        (out / sub).mkdir(exist_ok=True)
    state = student.state_dict()
    ckpt.save_tensors(out / "model.safetensors", state)
    ckpt.save_tensors(out / "ema.safetensors", state)  # no EMA of the student: `Run.load` reads ema by default
    shutil.copyfile(teacher_run.path / "model.json", out / "model.json")
    ckpt.atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    T = teacher_run.config.num_timesteps
    info = {"method": "progressive distillation (Salimans & Ho 2022)", "teacher": str(teacher_run.path.resolve()),
            "teacher_solver": "ddim", "teacher_steps": config.teacher_steps, "teacher_guidance": teacher_run.config.guidance,
            "student_steps": steps, "timesteps": nested_grids(T, steps)[0], "rounds": rounds,
            "settings": dataclasses.asdict(config)}
    ckpt.atomic_write_text(out / "distill.json", json.dumps(info, indent=2) + "\n")
    teacher_run.config.replace(solver="ddim", sample_steps=steps, guidance=1.0).save(out / "config.json")


__all__ = ["default_out", "default_teacher_steps", "distill"]

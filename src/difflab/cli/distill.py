"""`difflab distill RUN`: progressive distillation into a run folder that samples in 1-8 DDIM steps."""

from __future__ import annotations

from pathlib import Path

from difflab.cli.options import number
from difflab.precision import PRECISIONS
from difflab.run.outputs import check_folder, guard


def register(sub) -> None:
    p = sub.add_parser("distill", help="distil a run into a 1-8-step sampler (progressive distillation)")
    p.add_argument("run", type=Path, help="run folder to distil (read only)")
    p.add_argument("--steps", type=number(int), default=4, help="student DDIM steps: 1, 2, 4 or 8 (default 4)")
    p.add_argument("--teacher-steps", type=number(int),
                   help="DDIM steps of the teacher the first round imitates (default 16, or a distilled RUN's own)")
    p.add_argument("--minutes-per-round", type=number(float), default=1.5,
                   help="budget of each halving (default 1.5; CPU)")
    p.add_argument("--iterations", type=number(int), help="optimiser steps per round (with --minutes-per-round: first reached)")
    p.add_argument("--out", type=Path, help="new run folder (default RUN-distilled-K)")
    p.add_argument("--batch-size", type=number(int), default=64)
    p.add_argument("--lr", type=number(float), default=2e-4, help="AdamW rate, decayed linearly to 0 in each round")
    p.add_argument("--seed", type=number(int), default=0)
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="the student's forward: fp32 (default) or bf16 autocast; auto: bf16 on CPUs with AVX512-BF16/AMX")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-eval", action="store_true", help="skip the end-of-run judge figure")
    p.set_defaults(func=guard(run))


def run(args) -> int:
    from difflab.api import quality_line
    from difflab.distill import default_teacher_steps, distill
    from difflab.training.distill import DistillConfig

    if args.out is not None:
        check_folder(args.out, "--out")  # before minutes of distillation
    teacher_steps = args.teacher_steps or (default_teacher_steps(args.run) if args.run.is_dir() else 16)
    config = DistillConfig(steps=args.steps, teacher_steps=teacher_steps, minutes_per_round=args.minutes_per_round,
                           iterations=args.iterations, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                           device=args.device, precision=args.precision)
    student = distill(args.run, config, out=args.out, progress=not args.no_progress, evaluate=not args.no_eval)
    print(f"distilled run folder: {student.path} (DDIM, {config.steps} steps, guidance 1)")
    final = student.folder.read_eval("final")
    if final:
        print(quality_line(final))
    print(f"sample from it: difflab sample {student.path}")
    return 0

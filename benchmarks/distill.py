"""Few-step quality: the teacher's DDIM + CFG at 1/2/4/8/16 steps against distilled students.

    python benchmarks/distill.py TEACHER_RUN STUDENT_RUN [STUDENT_RUN ...] [--n 1000]

Judge accuracy of n class-conditional samples (n/10 per class) and the Fréchet distance of judge
features against the real held-out split (as in benchmarks/sampling.py). NFE counts network
forwards per image batch: the teacher's CFG pair is one batched forward per step; a student
(guidance 1) does one plain forward per step.
"""

from __future__ import annotations

import argparse
import time

import torch

from difflab.data import load_dataset
from difflab.evaluation import judge_samples, load_judge
from difflab.evaluation.metrics import frechet_distance
from difflab.evaluation.suite import sample_shown
from difflab.run import Run
from difflab.sampling import class_labels


def row(name: str, run: Run, labels, judge, real, **settings) -> None:
    s = run.sampler(**settings)
    start = time.perf_counter()
    images = sample_shown(run, labels, n=None, seed=0, enabled=False, **settings)  # text runs: drawn captions
    seconds = time.perf_counter() - start
    acc = judge_samples(judge, images, labels)["accuracy"]
    fd = frechet_distance(judge.features(images), real)
    print(f"| {name} | {s.solver} | {s.steps} | {s.guidance:g} | {100 * acc:.1f}% | {fd:.2f} | {len(labels) / seconds:.0f} |",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("teacher")
    parser.add_argument("students", nargs="+")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--teacher-steps", default="1,2,4,8,16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    teacher = Run.load(args.teacher, device=args.device)
    judge = load_judge(teacher.config.dataset, verbose=False)
    real = judge.features(load_dataset(teacher.config.dataset, split="test").images)
    labels = class_labels(teacher.num_classes, args.n // teacher.num_classes)
    print(f"n={len(labels)} ({args.n // teacher.num_classes} per class), seed 0\n")
    print("| model | solver | steps (NFE) | guidance | judge accuracy | judge-feature FD | img/s |")
    print("|---|---|---|---|---|---|---|")
    for steps in [int(s) for s in args.teacher_steps.split(",") if s]:  # "" skips the teacher rows
        row("teacher", teacher, labels, judge, real, solver="ddim", steps=steps)
    for path in args.students:
        student = Run.load(path, device=args.device)
        row(f"student ({student.path.name})", student, labels, judge, real)


if __name__ == "__main__":
    main()

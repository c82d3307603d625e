"""Quality against the number of network evaluations (NFE) for every solver, on a trained run.

    python benchmarks/sampling.py RUN [--n 1000] [--guidance 3]

For each solver/step count: judge accuracy of n class-conditional samples, Fréchet distance of judge
features against the real held-out split, images/s end to end. With CFG each step is one batched
forward of 2B images, so NFE = steps (counting the batched pair once).
"""

from __future__ import annotations

import argparse
import time

import torch

from difflab.data import load_dataset
from difflab.evaluation import judge_samples, load_judge
from difflab.evaluation.metrics import frechet_distance
from difflab.generate import class_labels
from difflab.run import Run

GRID = [("ddpm", 1000), ("ddim", 100), ("ddim", 50), ("ddim", 20), ("ddim", 10),
        ("dpm++", 20), ("dpm++", 10), ("dpm++", 8), ("dpm++", 5)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    run = Run.load(args.run, device=args.device)
    judge = load_judge(run.config.dataset, verbose=False)
    real = judge.features(load_dataset(run.config.dataset, split="test").images)
    labels = class_labels(run.num_classes, args.n // run.num_classes)
    print(f"{'solver':8} {'NFE':>5} {'judge acc':>9} {'FD':>8} {'img/s':>8}   (guidance {args.guidance}, n={len(labels)})")
    for solver, steps in GRID:
        start = time.perf_counter()
        images = run.sample(labels, solver=solver, steps=steps, guidance=args.guidance)
        seconds = time.perf_counter() - start
        acc = judge_samples(judge, images, labels)["accuracy"]
        fd = frechet_distance(judge.features(images), real)
        print(f"{solver:8} {steps:5} {100 * acc:8.1f}% {fd:8.2f} {len(labels) / seconds:8.0f}", flush=True)


if __name__ == "__main__":
    main()

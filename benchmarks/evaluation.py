"""Evaluation bars: every metric over solver steps x guidance scales, and the time of one evaluation.

    python benchmarks/evaluation.py                       # /work/spine-run, n=1000 per cell, 3 x 4 grid
    python benchmarks/evaluation.py --n 500 --steps 10,20 --guidance 0,3

The run folder is only read: results go to --out (a temporary folder by default). Timings are wall
clock on whatever the machine is doing; on shared CPUs they are noisy and only indicative.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from difflab.cli.options import float_list, int_list
from difflab.evaluation.suite import EvalConfig, evaluate_images, sample_shown
from difflab.run import Run
from difflab.sampling import class_labels


def cell(run: Run, n: int, steps: int, guidance: float, out: Path, pictures: bool) -> dict:
    """Sample n images (even over classes) at one setting, then evaluate them."""
    labels = class_labels(run.num_classes, n // run.num_classes)
    started = time.monotonic()
    images = sample_shown(run, labels, n=None, seed=0, enabled=False, steps=steps, guidance=guidance)  # text runs: drawn captions
    meta = {"source": str(run.path), "sampler": {"solver": run.sampler().solver, "steps": steps, "guidance": guidance},
            "seeds": {"sampling": 0, "evaluation": 0}, "sampling_seconds": round(time.monotonic() - started, 1)}
    return evaluate_images(images, labels, run.config.dataset, out=out, name=f"s{steps}-g{guidance:g}",
                           config=EvalConfig(pictures=pictures), model=run.model if pictures else None, meta=meta)


def row(r: dict) -> str:
    d, m = r["distribution"], r["memorisation"]
    div = sum(m["diversity"].values()) / len(m["diversity"])
    return (f"| {r['sampler']['steps']} | {r['sampler']['guidance']:g} | {100 * r['accuracy']:.1f} | "
            f"{100 * r['mean_confidence']:.1f} | {d['fd']:.2f} (floor {d['floor_fd']:.2f}, ref {d['n_reference']}) | {1e3 * d['kid_mean']:.1f} ± {1e3 * d['kid_std']:.1f} | "
            f"{d['precision']:.3f} | {d['recall']:.3f} | {d['is_mean']:.2f} | {div:.2f} | "
            f"{100 * m['pixel']['fraction_closer_than_test']:.1f} | "
            f"{100 * r['idk']['accuracy_at_coverage']['judge max-softmax']['0.9']:.1f} | "
            f"{r['sampling_seconds']:.0f} | {r['evaluation_seconds']:.0f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, default=Path("/work/spine-run"))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--steps", type=int_list, default=(10, 20, 50))
    p.add_argument("--guidance", type=float_list, default=(0.0, 1.0, 3.0, 5.0))
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    run = Run.load(args.run)
    out = args.out or Path(tempfile.mkdtemp(prefix="difflab-eval-bench-"))
    print(f"{args.run}, n={args.n} per cell, torch threads {torch.get_num_threads()}, results in {out}", flush=True)
    print("| steps | w | judge acc % | conf % | FD (real floor, fixed reference size) | KID x1e3 | precision | recall | IS | diversity "
          "| too close % | acc@90% cov | sample s | eval s |\n|" + "---|" * 14, flush=True)
    for steps in args.steps:
        for guidance in args.guidance:
            pictures = steps == 20 and guidance == 3.0  # one cell draws every picture
            print(row(cell(run, args.n, steps, guidance, out, pictures)), flush=True)


if __name__ == "__main__":
    main()

"""Peak resident memory of `difflab sample` at 1,000 vs 10,000 images, and of a short `difflab train`.

    python benchmarks/memory.py RUN [--steps 1] [--minutes 0.5] [--skip-train]

Each command runs as its own child process; its peak RSS is the `ru_maxrss` that `os.wait4` returns
for that child alone. Streaming sampling should make the two sample rows about equal (bounded by the
chunk size, not by n); the issue's target for training is <= 1.5 GB on CPU. `--steps` only shortens
the run (memory per chunk does not depend on the number of solver steps).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_rss(argv: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit code) of `python -m difflab ARGV` in a child process."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "difflab", *argv], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024, time.perf_counter() - start, child.returncode  # Linux: ru_maxrss in KiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", help="a trained run folder (read only)")
    parser.add_argument("--steps", type=int, help="solver steps of the sample rows (default: the run's)")
    parser.add_argument("--minutes", type=float, default=0.5, help="training budget of the train row")
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="difflab-memory-"))
    jobs = [(f"sample --n {n} --out-dir", ["sample", args.run, "--n", str(n), "--out-dir", str(work / f"d{n}"),
                                           "--out", str(work / f"grid{n}.png"), "--no-progress",
                                           *(["--steps", str(args.steps)] if args.steps else [])]) for n in (1000, 10000)]
    if not args.skip_train:
        jobs.append((f"train --minutes {args.minutes:g} --no-eval",
                     ["train", "--minutes", str(args.minutes), "--no-eval", "--no-progress", "--out", str(work / "run")]))
    print(f"{'command':34} {'peak RSS':>10} {'wall':>8}  files written")
    for name, argv in jobs:
        mb, seconds, code = peak_rss(argv)
        folder = Path(argv[argv.index("--out-dir") + 1]) if "--out-dir" in argv else None
        files = sum(1 for _ in folder.glob("*/*.png")) if folder else "-"
        print(f"{name:34} {mb:8.0f} MB {seconds:7.0f}s  {files}{'' if code == 0 else f'  (exit {code})'}", flush=True)
    print(f"(outputs in {work})")


if __name__ == "__main__":
    main()

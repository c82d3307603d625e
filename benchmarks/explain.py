"""Explain bars: every `difflab explain` command at its defaults on a trained run, timed, with the checks
the issue asks for (flat PCA spectrum at t = T, steep at t = 0; IG complete; when digits appear).

    python benchmarks/explain.py /work/spine-run            # all five commands (a few minutes on 2 cores)
    python benchmarks/explain.py /work/spine-run --only pca

Outputs go to a temporary folder (the run folder may be read-only). Wall and CPU time are printed per
command: on a shared machine the wall time mostly measures the neighbours.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from difflab.cli import main

COMMANDS = ("pca", "attribute", "class-saliency", "kernels", "emergence")


def timed(argv: list[str]) -> tuple[float, float]:
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF).ru_utime, time.perf_counter()
    if main(argv) != 0:
        sys.exit(f"failed: difflab {' '.join(argv)}")
    return time.perf_counter() - wall0, resource.getrusage(resource.RUSAGE_SELF).ru_utime - cpu0


def check_pca(numbers: dict) -> list[str]:
    """Flat at T (top ratio within ~the Marchenko-Pastur edge of 1/D), steep at the clean end."""
    first, last = numbers["timesteps"][0], numbers["timesteps"][-1]
    lines = [f"PCA x_t: top ratio x D = {first['top1_times_dim']:.2f} at t={first['t']}, "
             f"{last['top1_times_dim']:.1f} at t={last['t']} (1 = flat); top-{numbers['k']} cumulative "
             f"{first['cumulative_k']:.3f} vs {last['cumulative_k']:.3f}"]
    assert all(r["cumulative_k"] <= 1 + 1e-9 for r in numbers["timesteps"])
    assert all(a >= b - 1e-12 for r in numbers["timesteps"] for a, b in zip(r["explained_variance_ratio"],
                                                                             r["explained_variance_ratio"][1:]))
    assert first["top1_times_dim"] < 8, "spectrum at t=T should be flat"
    assert last["top1_times_dim"] > 5 * first["top1_times_dim"], "spectrum at t=0 should be steep"
    return lines


def summaries(name: str, numbers: dict) -> list[str]:
    if name == "pca":
        return check_pca(numbers)
    if name == "attribute":
        deltas = [r["convergence_delta"] for r in numbers["results"] if "convergence_delta" in r]
        assert max(deltas) < 1e-2
        return [f"IG convergence delta (|max| over t): {max(deltas):.2e}"]
    if name == "class-saliency":
        return [f"t={r['t']}: mean |e_c - e_u| {r['mean_abs_difference']:.4f}, {100 * r['difference_on_ink']:.0f}% "
                f"on the final digit's ink ({100 * r['ink_fraction']:.0f}% of pixels)" for r in numbers["results"]]
    if name == "emergence":
        return [f"digit appears (mean p >= {th}) at {at} of the steps" for th, at in numbers["appears"].items()]
    return []


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--only", choices=COMMANDS, action="append")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="difflab-explain-bench-"))
    for name in args.only or COMMANDS:
        wall, cpu = timed(["explain", name, str(args.run), "--out", str(out / name)])
        numbers = json.loads(next((out / name).glob("*.json")).read_text())
        print(f"{name:>15}: wall {wall:6.1f} s, cpu {cpu:6.1f} s")
        for line in summaries(name, numbers):
            print(f"{'':>17}{line}")
    print(f"figures in {out}")


if __name__ == "__main__":
    main_bench()

"""Training beside busy processes: the thread governor (training/threads.py) against a fixed thread count.

    nice -n 10 python benchmarks/contention.py --steps 300             # idle, then beside 1 CPU hog
    nice -n 10 python benchmarks/contention.py --steps 300 --hogs 2    # ... and beside 2 hogs

Each run trains the default model (default TrainConfig, bf16 autocast when the CPU has it) for `--steps`
optimizer steps from seed 0 in a fresh child process, without sample grids, and times `Trainer.run()`.
Beside it run 0, 1 (and 2) single-threaded hogs (`while True: pass`) that this script starts and stops.
Two policies: `auto` (the governor, the default) and `fixed` (DIFFLAB_THREADS=off: torch's default
count throughout, the behaviour before the governor). The table shows steps/s, the thread counts each run used,
its time against the idle run of the same policy, and whether its final weights (model + EMA) are
bitwise those of the idle `auto` run: they are when the thread count never changed.
Other jobs on the machine change the figures; the load average at the start is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOG = "while True: pass"


def child(run_dir: str, steps: int) -> None:
    """Train `steps` steps of the default config into `run_dir`; print one JSON line of results."""
    import torch

    from difflab.run.folder import RunFolder
    from difflab.training.config import TrainConfig
    from difflab.training.trainer import Trainer

    config = TrainConfig(steps=steps, minutes=None, epochs=None, num_sample_grids=0)
    trainer = Trainer(config, Path(run_dir), show_progress=False)
    started = time.monotonic()
    trainer.run()
    wall = time.monotonic() - started
    folder = RunFolder(run_dir)
    digest = hashlib.sha256()
    for name in ("model", "ema"):
        state = folder.load_weights(name)
        for key in sorted(state):
            digest.update(key.encode() + state[key].contiguous().view(torch.uint8).numpy().tobytes())
    used = [r["threads"] for r in folder.read_metrics() if "threads" in r]
    print(json.dumps({"steps": trainer.step, "wall": wall, "meta": folder.read_meta().get("threads", {}),
                      "rows": used, "sha": digest.hexdigest()}))


def run_one(steps: int, hogs: int, env: dict[str, str]) -> dict:
    """One child training run beside `hogs` busy processes (started before it, stopped after it)."""
    spinners = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(hogs)]
    try:
        with tempfile.TemporaryDirectory(prefix="contention-") as tmp:
            out = subprocess.run([sys.executable, __file__, "--child", str(Path(tmp) / "run"), "--steps", str(steps)],
                                 env=env, capture_output=True, text=True, check=False)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    if out.returncode:
        sys.exit(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def thread_story(result: dict) -> str:
    """'2', or '2→1': the thread counts in order (the start, then each metrics row's)."""
    counts: list[int] = []
    for c in [result["meta"].get("initial"), *result["rows"]]:
        if c is not None and c not in counts[-1:]:
            counts.append(c)
    return "→".join(map(str, counts)) or "?"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per run (default 300)")
    p.add_argument("--hogs", type=int, choices=(1, 2), default=1, help="the most busy processes beside a run")
    p.add_argument("--policies", default="auto,fixed", help="comma-separated: auto (governor), fixed (default count)")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.steps < 1:
        p.error(f"--steps must be at least 1, got {args.steps}")
    if args.child:
        return child(args.child, args.steps)
    import torch

    default = torch.get_num_threads()
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "DIFFLAB_THREADS")}
    envs = {"auto": {**base, "DIFFLAB_THREADS": "auto"}, "fixed": {**base, "DIFFLAB_THREADS": "off"}}
    policies = [s.strip() for s in args.policies.split(",")]
    if bad := [s for s in policies if s not in envs]:
        p.error(f"--policies: unknown {', '.join(bad)}; one or more of auto, fixed")
    print(f"default TrainConfig, {args.steps} steps, seed 0; {len(os.sched_getaffinity(0))} CPUs, torch default "
          f"{default} threads; load average at start {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[tuple[int, str], dict] = {}
    for hogs in range(args.hogs + 1):
        for policy in policies:
            results[hogs, policy] = r = run_one(args.steps, hogs, envs[policy])
            print(f"  hogs {hogs} {policy:5s}: {r['steps']} steps in {r['wall']:.1f} s", flush=True)
    reference = results.get((0, "auto")) or results[0, policies[0]]
    print(f"\n| hogs | policy | steps | wall s | steps/s | threads | x idle ({policies[0]}) | x idle (same policy) "
          "| weights = idle auto |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (hogs, policy), r in results.items():
        idle, first = results[0, policy], results[0, policies[0]]
        print(f"| {hogs} | {policy} | {r['steps']} | {r['wall']:.1f} | {r['steps'] / r['wall']:.2f} | {thread_story(r)} "
              f"| {r['wall'] / first['wall']:.2f} | {r['wall'] / idle['wall']:.2f} | "
              f"{'yes' if r['sha'] == reference['sha'] else 'no'} |")
    for hogs in range(1, args.hogs + 1):
        if (hogs, "auto") in results and (hogs, "fixed") in results:
            gain = results[hogs, "fixed"]["wall"] / results[hogs, "auto"]["wall"]
            print(f"beside {hogs} hog(s): the governor is {gain:.2f}x as fast as {default} fixed threads")


if __name__ == "__main__":
    main()

"""The newcomer's walkthrough: the README's commands in its order, each timed and checked as a user meets it.

    python benchmarks/walkthrough.py --workdir /tmp/walk --json walk.json    # ~40 min on a quiet 2-core CPU
    python benchmarks/walkthrough.py --workdir /tmp/walk --quick             # train 200 steps: the checks, not the figures

Each command runs as its own process in WORKDIR, as typed in a shell (`difflab ...` on PATH), with a fresh
`DIFFLAB_CACHE` under WORKDIR unless `--warm-cache` (a newcomer's judges train cold). Per command: wall
seconds, peak RSS (the `ru_maxrss` that `os.wait4` gives for the child and the processes it waited for),
exit code, the longest stretch without a line of output (stdout and stderr together, as a pipe shows
them), and what a newcomer must not meet: a traceback, a warning line difflab did not write, a new file
at WORKDIR's top level that the command line does not name. `{RUN}` is the folder the train command
printed. The commands that need another extra or long training (text prompts, Fashion-MNIST, the studio,
two processes) are listed with `--all`; their figures are in README/RESULTS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

SWEEP = """[base]
steps = 300
[grid]
lr = [1e-3, 2e-3]
[evaluate]
guidance = [1, 3]
n = 20
"""

COMMANDS = [  # the README's order: the main job, then "on that run"
    "difflab train",
    "difflab sample {RUN} --label 7 --n 16 --steps 20 --guidance 3 --seed 0 --out sevens.png",
    "difflab sample {RUN} --n 100 --guidance 1.6 --autoguidance 3 --out both.png",
    "difflab sample {RUN} --n 100 --guidance 2 --autoguidance 1 --out g.png",
    "difflab sample {RUN} --n 100 --guidance-method auto --guidance 2 --out auto.png",
    "difflab sample {RUN} --n 100 --out grid.png --save-npz samples.npz",
    "difflab sample {RUN} --n 10000 --out-dir gen",
    "difflab evaluate {RUN} --n 1000",
    "difflab distill {RUN} --steps 4",
    "difflab sample {RUN}-distilled-4 --n 100",
    "difflab evaluate --images samples.npz --dataset mnist5k",
    "difflab edit noise {RUN} --from-class 3 --t 250,500,750",
    "difflab edit denoise {RUN} --image digit.png --t 250,500,750",
    "difflab edit sdedit {RUN} --image photo.jpg --label 7 --levels 1,3,5,7,10,20",
    "difflab edit inpaint {RUN} --from-class 5 --box 0,0,28,12 --label 4",
    "difflab edit anagram {RUN} --labels 6,9 --view rot180",
    "difflab edit hybrid {RUN} --far 1 --near 7 --sigma 1.5",
    "difflab explain pca {RUN}",
    "difflab explain attribute {RUN} --method all",
    "difflab explain class-saliency {RUN} --label 7",
    "difflab explain kernels {RUN}",
    "difflab explain emergence {RUN} --n 200",
    "difflab report {RUN}",
    "difflab sweep sweep.toml --out sweeps/lr --parallel 2",
    "difflab export {RUN} --diffusers out/",
    "python -c \"import difflab.interop.diffusers_model, diffusers; diffusers.DiffusionPipeline.from_pretrained('out')\"",
    "difflab sample --pipeline out --label 1 --guidance 1 --out pipeline.png",
]
MORE = [  # --all: other extras or long training
    "difflab train --processes 2 --batch-size 64 --steps 200 --out runs/two",
    "difflab train --conditioning text --out runs/text",
    "difflab sample runs/text --prompt \"a handwritten seven\" --guidance 3 --n 16 --out text-sevens.png",
    "difflab evaluate runs/text --prompts --per-prompt 100",
    "difflab train --objective denoise --sigma 0.5 --out den",
    "difflab edit denoise-ood den --from-class 3 --sigmas 0,0.2,0.5,0.8,1",
]
OURS = re.compile(r"^(difflab|WARNING: only|run folder|generated|report|  )")  # lines difflab writes itself


def run_command(line: str, workdir: Path, env: dict) -> dict:
    """Run one shell line in `workdir`; its figures, its output and the new top-level entries of `workdir`."""
    before = set(os.listdir(workdir))
    start = time.perf_counter()
    child = subprocess.Popen(shlex.split(line), cwd=workdir, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    lines, stamps = [], [start]

    def read() -> None:
        for raw in iter(child.stdout.readline, b""):
            for part in raw.decode(errors="replace").replace("\r", "\n").splitlines():
                lines.append(part)
                stamps.append(time.perf_counter())

    reader = threading.Thread(target=read)
    reader.start()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    end = time.perf_counter()
    stamps.append(end)
    new = sorted(set(os.listdir(workdir)) - before)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    longest = max(range(len(gaps)), key=gaps.__getitem__)
    return {"command": line, "wall_s": round(end - start, 1), "peak_mb": round(usage.ru_maxrss / 1024),
            "exit": child.returncode, "silent_s": round(gaps[longest], 1),
            "silent_after": lines[longest - 1] if longest else "(start)", "output": lines, "new_files": new}


def findings(result: dict) -> list[str]:
    """What a newcomer should not meet in this command's run."""
    out, named = result["output"], shlex.split(result["command"])
    found = [f"exit {result['exit']}"] if result["exit"] else []
    found += ["traceback"] if any("Traceback" in line for line in out) else []
    warnings = [line for line in out if "warn" in line.lower() and not OURS.match(line)]
    found += [f"warning: {warnings[0][:100]}"] if warnings else []
    found += [f"silent {result['silent_s']:.0f} s after: {result['silent_after'][:80]}"] if result["silent_s"] > 60 else []
    stray = [f for f in result["new_files"] if not any(f == Path(a).parts[0] for a in named if a.strip("/"))]
    documented = {"runs", "cache", "eval" if "--images" in named else "runs"}  # train's place, ours, evaluate --images'
    stray = [f for f in stray if f not in documented]
    found += [f"unexpected file: {', '.join(stray)}"] if stray else []
    return found


def prepare_inputs(workdir: Path) -> None:
    """A scanned digit and a "photo" as a user would have them: a real test digit, dark ink on light paper."""
    import numpy as np
    from PIL import Image

    from difflab.data import load_dataset

    test = load_dataset("mnist5k", split="test")
    digit = ((test.images[0, 0].numpy() + 1) * 127.5).astype(np.uint8)
    Image.fromarray(digit).save(workdir / "digit.png")
    big = Image.fromarray(255 - digit).resize((200, 200), Image.BILINEAR).convert("RGB")
    big.save(workdir / "photo.jpg", quality=90)
    (workdir / "sweep.toml").write_text(SWEEP)


def the_run(result: dict) -> str:
    found = [line.split(":", 1)[1].strip() for line in result["output"] if line.startswith("run folder:")]
    if not found:
        sys.exit("the train command printed no 'run folder:' line; see its output above")
    return found[-1]


def table(results: list[dict]) -> str:
    rows = ["| command | wall | peak RSS | longest silence | findings |", "|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| `{r['command']}` | {r['wall_s']:.0f} s | {r['peak_mb']:,} MB | {r['silent_s']:.0f} s | "
                    f"{'; '.join(r['findings']) or 'none'} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", type=Path, required=True, help="an empty folder to work in")
    parser.add_argument("--quick", action="store_true", help="train 200 steps (checks the commands, not the figures)")
    parser.add_argument("--all", action="store_true", help="also text prompts, two processes, the denoiser")
    parser.add_argument("--warm-cache", action="store_true", help="use $DIFFLAB_CACHE (judges already trained)")
    parser.add_argument("--only", type=int, help="stop after this many commands")
    parser.add_argument("--json", type=Path, help="write every result (with its output) here")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if not args.warm_cache:
        env["DIFFLAB_CACHE"] = str(args.workdir / "cache")
    prepare_inputs(args.workdir)
    commands = COMMANDS + (MORE if args.all else [])
    if args.quick:
        commands = [c + (" --steps 200" if c == "difflab train" else "") for c in commands]
    results, run = [], None
    for line in commands[: args.only]:
        result = run_command(line.replace("{RUN}", run or "{RUN}"), args.workdir, env)
        result["findings"] = findings(result)
        run = run or the_run(result)
        results.append(result)
        print(f"{result['wall_s']:7.1f} s {result['peak_mb']:6,} MB  {line}  {'; '.join(result['findings'])}", flush=True)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

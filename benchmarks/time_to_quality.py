"""Time to quality: minutes of training until generated digits are recognised by the judge.

    python benchmarks/time_to_quality.py --minutes 10 --json ttq.json          # full run (~45 min quiet)
    python benchmarks/time_to_quality.py --minutes 0.3 --lines ours --n 100    # smoke test (~1 min)

Quality is the judge accuracy of n class-conditional samples (n/10 per class; the run's
default sampler: DPM-Solver++, `TrainConfig.sample_steps` steps, guidance 3) on mnist5k. Lines:

  ours       difflab's default network, difflab's Trainer, default recipe, a `--minutes` budget;
  diffusers  the HF course UNet2DModel (benchmarks/peers.py) through the SAME Trainer, data, recipe
             and budget: only the `model_factory` differs;
  cli        `difflab train` with its defaults, as a user runs it, in a child process; its clock
             starts before the interpreter does (start-up, imports and data loading included).

During training the EMA weights are copied to memory every `--every` seconds of training (the copy's
own time is taken off the clock), with the training wall time and the process CPU time. After
training, snapshots are evaluated by bisection (accuracy is close to monotone) to find the first one
reaching each threshold, plus the final one, so evaluation stays off the clock and costs ~log2(k)
evaluations per threshold. Sample grids and periodic checkpoints are off for `ours`/`diffusers` (the
same for both); `cli` keeps every default. The LR decays over the budget (cosine), so time to
quality depends on `--minutes`; `cli` shows the default schedule (`DEFAULT_STEPS` optimizer steps).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from difflab.nn.spec import build
from difflab.training.config import TrainConfig
from difflab.training.trainer import Trainer

THRESHOLDS = (0.90, 0.95)
BASE: dict = {}  # --set: TrainConfig fields for training and sampling (e.g. an earlier recipe, to compare with its figures)
LINES = ("ours", "diffusers", "cli")


class SnapshotTrainer(Trainer):
    """The Trainer, copying EMA weights to memory every `every` seconds of its own training clock."""

    every: float = 20.0
    clock_origin: tuple[float, float] | None = None  # (time.time(), process_time()) the clock counts from

    def run(self):
        self.snapshots, self.overhead = [], 0.0
        wall0, cpu0 = self.clock_origin or (time.time(), time.process_time())
        self.wall0, self.cpu0, self.next_at = wall0, cpu0, self.every
        result = super().run()
        self.snapshot()  # the final weights
        return result

    def clock(self) -> tuple[float, float]:
        return time.time() - self.wall0 - self.overhead, time.process_time() - self.cpu0 - self.overhead

    def train_step(self) -> float:
        loss = super().train_step()
        if self.clock()[0] >= self.next_at:
            self.snapshot()
            self.next_at += self.every
        return loss

    def snapshot(self) -> None:
        started = time.perf_counter()
        wall, cpu = self.clock()
        state = {k: v.detach().clone() for k, v in self.ema.model.state_dict().items()}
        self.snapshots.append({"wall_s": wall, "cpu_s": cpu, "step": self.step, "images": self.seen, "state": state})
        self.overhead += time.perf_counter() - started


def model_factory(name: str):
    """The network of a line: difflab's default U-Net (None) or the course UNet (benchmarks/peers.py)."""
    if name == "diffusers":
        from peers import course_unet

        return course_unet
    return None


def train_in_process(name: str, minutes: float, every: float) -> tuple[list[dict], torch.nn.Module]:
    config = TrainConfig(**{**BASE, "minutes": minutes, "num_sample_grids": 0, "checkpoint_minutes": 1e6})
    SnapshotTrainer.every = every
    with tempfile.TemporaryDirectory() as out:
        trainer = SnapshotTrainer(config, Path(out) / "run", show_progress=False, model_factory=model_factory(name))
        trainer.run()
    return trainer.snapshots, trainer.ema.model


def train_cli(every: float, cli_args: list[str]) -> tuple[list[dict], torch.nn.Module, float]:
    """`difflab train` (defaults + cli_args) in a child whose Trainer snapshots; returns its total wall too."""
    with tempfile.TemporaryDirectory() as tmp:
        started = time.time()
        cmd = [sys.executable, __file__, "--child", tmp, "--child-start", repr(started), "--every", str(every),
               "--cli-args", " ".join(cli_args)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        total = time.time() - started
        if done.returncode:
            sys.exit(f"difflab train failed:\n{done.stderr[-2000:]}")
        snapshots = torch.load(Path(tmp) / "snapshots.pt")
    model = build(TrainConfig().model_spec((1, 28, 28), 10))  # difflab's default U-Net, as `difflab train` builds it
    return snapshots, model.eval().requires_grad_(False), total


def child(tmp: str, start: float, every: float, cli_args: list[str]) -> None:
    """Runs `difflab train --out TMP/run --no-progress [cli_args]` with the snapshotting Trainer."""
    import difflab.api
    from difflab.cli import main

    SnapshotTrainer.every, SnapshotTrainer.clock_origin = every, (start, 0.0)  # CPU time from process start
    trainers = []

    class Recorded(SnapshotTrainer):
        def run(self):
            trainers.append(self)
            return super().run()

    difflab.api.Trainer = Recorded
    code = main(["train", "--out", str(Path(tmp) / "run"), "--no-progress", *cli_args])
    if code:
        sys.exit(code)
    torch.save(trainers[0].snapshots, Path(tmp) / "snapshots.pt")


class Evaluator:
    """Judge accuracy of a snapshot's samples, cached; `first_reaching` bisects over snapshots."""

    def __init__(self, judge, model: torch.nn.Module, snapshots: list[dict], n: int):
        from difflab.diffusion import NoiseSchedule
        from difflab.sampling import Condition, Sampler, class_labels

        self.judge, self.model, self.snapshots, self.cache = judge, model, snapshots, {}
        self.labels = class_labels(10, n // 10)
        c = TrainConfig(**BASE)
        self.alphas_cumprod = NoiseSchedule(c.schedule, c.num_timesteps).alphas_cumprod
        self.sampler = Sampler(c.solver, c.sample_steps, c.guidance, guidance_interval=c.guidance_interval, seed=0,
                               precision=c.precision)  # the run's default sampler, CFG only (no guide network here)
        self.cond = Condition.classes(self.labels, 10)

    def accuracy(self, i: int) -> float:
        if i not in self.cache:
            from difflab.evaluation import judge_samples

            self.model.load_state_dict(self.snapshots[i]["state"])
            images = self.sampler.generate(self.model.eval(), self.alphas_cumprod, self.cond)
            self.cache[i] = judge_samples(self.judge, images, self.labels)["accuracy"]
        return self.cache[i]

    def first_reaching(self, threshold: float) -> int | None:
        lo, hi = -1, len(self.snapshots) - 1  # accuracy(hi) >= threshold; everything <= lo is below
        if self.accuracy(hi) < threshold:
            return None
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.accuracy(mid) >= threshold:
                hi = mid
            else:
                lo = mid
        return hi


def summarise(name: str, snapshots: list[dict], evaluator: Evaluator) -> dict:
    last = snapshots[-1]
    row = {"line": name, "budget_wall_s": last["wall_s"], "budget_cpu_s": last["cpu_s"], "steps": last["step"],
           "images": last["images"], "final_accuracy": evaluator.accuracy(len(snapshots) - 1)}
    for th in THRESHOLDS:
        i = evaluator.first_reaching(th)
        row[f"to_{th:.0%}"] = None if i is None else {k: snapshots[i][k] for k in ("wall_s", "cpu_s", "step", "images")}
    row["points"] = [{**{k: snapshots[i][k] for k in ("wall_s", "cpu_s", "step", "images")}, "accuracy": acc}
                     for i, acc in sorted(evaluator.cache.items())]
    return row


def cell(row: dict, th: float, key: str) -> str:
    hit = row[f"to_{th:.0%}"]
    return f"{hit[key] / 60:.2f}" if hit else f"> {row['budget_' + key] / 60:.1f} (not reached)"


def ratio(rows: dict, th: float, key: str) -> str:
    a, b = rows.get("ours"), rows.get("diffusers")
    if not a or not b or not a[f"to_{th:.0%}"]:
        return "n/a"
    ours = a[f"to_{th:.0%}"][key]
    if b[f"to_{th:.0%}"]:
        return f"{b[f'to_{th:.0%}'][key] / ours:.2f}x"
    return f">= {b['budget_' + key] / ours:.2f}x"  # diffusers did not get there within its budget


def print_table(rows: dict, args) -> None:
    print(f"\n{' '.join(sys.argv)}")
    d = TrainConfig(**BASE)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; n={args.n} samples, {d.solver} {d.sample_steps} steps, "
          f"guidance {d.guidance:g} on t/T in {list(d.guidance_interval)}; {d.precision} precision; "
          f"snapshots every {args.every:g} s")
    head = ["line", "steps", "final acc", "90% wall min", "90% CPU min", "95% wall min", "95% CPU min", "evals"]
    print(" | ".join(head))
    for name, r in rows.items():
        print(" | ".join([name, str(r["steps"]), f"{100 * r['final_accuracy']:.1f}%", cell(r, .9, "wall_s"),
                          cell(r, .9, "cpu_s"), cell(r, .95, "wall_s"), cell(r, .95, "cpu_s"), str(len(r["points"]))]))
        if "process_wall_s" in r:
            print(f"  ({name}: whole `difflab train` process incl. end-of-run grid/evaluation/report: "
                  f"{r['process_wall_s'] / 60:.2f} min)")
    for th in THRESHOLDS:
        print(f"diffusers / difflab to {th:.0%}: wall {ratio(rows, th, 'wall_s')}, CPU {ratio(rows, th, 'cpu_s')}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", default=",".join(LINES), help=f"comma list of {', '.join(LINES)}")
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of ours/diffusers")
    parser.add_argument("--every", type=float, default=20.0, help="seconds of training between snapshots")
    parser.add_argument("--n", type=int, default=1000, help="samples per evaluation (n/10 per class)")
    parser.add_argument("--cli-args", default="", help="extra `difflab train` flags for the cli line, e.g. '--minutes 5'")
    parser.add_argument("--set", default="{}", help='TrainConfig fields as JSON for ours/diffusers, e.g. '
                        '\'{"min_snr": 0, "guidance": 3, "guidance_interval": [0, 1]}\' (the recipe before issue 16)')
    parser.add_argument("--json", type=Path, help="write the evaluated (time, accuracy) points here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-start", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    BASE.update(json.loads(args.set))
    if args.child:
        return child(args.child, args.child_start, args.every, args.cli_args.split())
    from difflab.evaluation import load_judge

    judge = load_judge("mnist5k", verbose=False)
    rows = {}
    for name in args.lines.split(","):
        if name not in LINES:
            sys.exit(f"unknown line {name!r}; use {', '.join(LINES)}")
        started = time.time()
        if name == "cli":
            snapshots, model, total = train_cli(args.every, args.cli_args.split())
        else:
            snapshots, model = train_in_process(name, args.minutes, args.every)
        trained = time.time() - started
        rows[name] = summarise(name, snapshots, Evaluator(judge, model, snapshots, args.n))
        if name == "cli":
            rows[name]["process_wall_s"] = total
        print(f"{name}: {len(snapshots)} snapshots, trained {trained:.0f} s, evaluated {time.time() - started - trained:.0f} s "
              f"({len(rows[name]['points'])} evaluations)", flush=True)
    print_table(rows, args)
    if args.json:
        args.json.write_text(json.dumps({"command": sys.argv, "n": args.n, "lines": rows}, indent=2))
        print(f"points written to {args.json}")


if __name__ == "__main__":
    main()

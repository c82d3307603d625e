"""Sweeps: many normal runs from one TOML spec, resumable, judged and tabulated.

    [base]                      # TrainConfig keys every run shares
    steps = 600
    [grid]                      # cartesian product of these values
    lr = [1e-3, 2e-3]
    channels = [[8, 16], [16, 32]]
    [[runs]]                    # and/or an explicit list (each on top of [base])
    objective = "eps"
    [evaluate]                  # how every finished run is judged
    guidance = [1.0, 3.0]       # each run is judged at each (no retraining)
    steps = 10                  # sampler steps; solver = the run's default unless given
    n = 100                     # images per class
    metric = "accuracy"         # sorts the table and is plotted per value

Layout: `SWEEP/runs/<NNN-key=value,...>/` (ordinary run folders), `SWEEP/results.{csv,md,png}`.
A run with `sweep-trained.json` is done and skipped; one with only `state/` is resumed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import re
import signal
import time
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path

from difflab import progress
from difflab.errors import Stopped, UserError
from difflab.run import RunFolder, files
from difflab.signals import signal_name
from difflab.training.config import TrainConfig

SECTIONS = {"base", "grid", "runs", "evaluate"}
EVAL_KEYS = {"guidance", "steps", "n", "seed", "solver", "metric", "judge"}
LOWER_IS_BETTER = {"final_loss", "train_seconds"}
JUDGE_METRICS = ("accuracy", "mean_confidence")
DONE = "sweep-trained.json"
TUPLE_KEYS = {f.name for f in dataclasses.fields(TrainConfig)
              if typing.get_origin(typing.get_type_hints(TrainConfig)[f.name]) is tuple}


@dataclass(frozen=True)
class EvalSpec:
    guidance: tuple[float, ...] = (3.0,)  # the default guidance of TrainConfig
    steps: int | None = None  # None: each run's sample_steps
    n: int = 100  # images per class: ~1 s per class for a small U-Net at 10 steps
    seed: int = 0
    solver: str | None = None
    metric: str | None = None  # None: accuracy when judged, else final_loss
    judge: bool = True  # False: no judge (rows carry loss and time only), e.g. for unlabelled data


@dataclass(frozen=True)
class SweepRun:
    name: str  # folder name under SWEEP/runs/
    changes: dict  # the keys this run sets on top of [base] (what the table shows)
    config: TrainConfig


@dataclass(frozen=True)
class SweepSpec:
    runs: tuple[SweepRun, ...]
    evaluate: EvalSpec
    varied: tuple[str, ...]  # keys that differ between runs, in spec order

    @classmethod
    def load(cls, path: str | Path) -> SweepSpec:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"sweep file {path} not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"sweep file {path} is not valid TOML: {err}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "sweep") -> SweepSpec:
        unknown = sorted(set(data) - SECTIONS)
        if unknown:
            raise UserError(f"{source}: unknown section(s) {', '.join(unknown)}; use [base], [grid], [[runs]], [evaluate]")
        base, grid, listed = data.get("base", {}), data.get("grid", {}), data.get("runs", [])
        changes = _grid_changes(grid, source) + [_checked_run(r, i, source) for i, r in enumerate(listed)]
        changes = changes or [{}]
        varied = tuple(dict.fromkeys(k for c in changes for k in c))
        runs = []
        for i, change in enumerate(changes):
            config = TrainConfig.from_dict({**base, **change}, source=f"{source} run {i}")
            runs.append(SweepRun(run_name(i, change), change, config))
        return cls(tuple(runs), _eval_spec(data.get("evaluate", {}), source), varied)


def _grid_changes(grid: dict, source: str) -> list[dict]:
    """The cartesian product of `[grid]`, in the order written (last key varies fastest)."""
    if not isinstance(grid, dict):
        raise UserError(f"{source}: [grid] must be a table of key = [values]")
    if "guidance" in grid:
        raise UserError(f"{source}: sweep guidance under [evaluate] (guidance = [1, 3]): it needs no retraining")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise UserError(f"{source}: grid.{key} must be a non-empty list of values, got {values!r}")
        if key in TUPLE_KEYS and not all(isinstance(v, list) for v in values):
            raise UserError(f"{source}: grid.{key} lists tuples; write {key} = [[8, 16], [16, 32]]")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))] if keys else []


def _checked_run(entry, index: int, source: str) -> dict:
    if not isinstance(entry, dict):
        raise UserError(f"{source}: [[runs]] entry {index} must be a table of config keys")
    return dict(entry)


def _eval_spec(table: dict, source: str) -> EvalSpec:
    unknown = sorted(set(table) - EVAL_KEYS)
    if unknown:
        raise UserError(f"{source}: unknown [evaluate] key(s) {', '.join(unknown)}; known: {', '.join(sorted(EVAL_KEYS))}")
    guidance = table.get("guidance", EvalSpec.guidance)
    guidance = tuple(float(g) for g in (guidance if isinstance(guidance, (list, tuple)) else [guidance]))
    if not guidance or min(guidance) < 0:
        raise UserError(f"{source}: evaluate.guidance must be numbers >= 0, got {table.get('guidance')!r}")
    judge = bool(table.get("judge", True))
    metric = table.get("metric") or ("accuracy" if judge else "final_loss")
    allowed = (JUDGE_METRICS if judge else ()) + tuple(sorted(LOWER_IS_BETTER))
    if metric not in allowed:
        raise UserError(f"{source}: evaluate.metric {metric!r} is not measured; use one of {', '.join(allowed)}")
    spec = EvalSpec(**{**table, "guidance": guidance, "metric": metric})
    if spec.n < 1 or (spec.steps is not None and spec.steps < 1):
        raise UserError(f"{source}: evaluate.n and evaluate.steps must be at least 1")
    return spec


def run_name(index: int, change: dict) -> str:
    """`003-lr=0.001,channels=8-16`: sortable, readable, safe as a folder name."""
    text = ",".join(f"{k}={'-'.join(map(str, v)) if isinstance(v, (list, tuple)) else v}" for k, v in change.items())
    return f"{index:03d}" + ("-" + re.sub(r"[^A-Za-z0-9=.,+_-]", "_", text)[:100] if text else "")


# --- running ----------------------------------------------------------------------------------
def run_sweep(spec: SweepSpec, out: str | Path, *, parallel: int = 1, log=print) -> list[dict]:
    """Train and judge every run not yet done (in `parallel` processes), then write the results table."""
    out = Path(out)
    if parallel < 1:
        raise UserError(f"--parallel must be at least 1, got {parallel}")
    check_folder(spec, out)
    if spec.evaluate.judge and any(r.config.conditional for r in spec.runs):
        _warm_judges(spec)  # trained once here, so parallel workers only read the cache
    jobs = [(run, out / "runs" / run.name, spec.evaluate) for run in spec.runs]
    if parallel == 1:
        results = [run_one(*job, log=log) for job in jobs]
    else:
        results = _run_parallel(jobs, parallel, log)
    rows = sorted((row for rows in results for row in rows), key=sort_key(spec.evaluate.metric))
    write_results(rows, spec.varied, spec.evaluate.metric, out)
    return rows


def _run_parallel(jobs: list, parallel: int, log) -> list[list[dict]]:
    """At most `parallel` runs submitted at a time: nothing waits in the pool's queue, so after a Ctrl-C no
    new run starts (a queued one would train to the end while the interrupt waits for it)."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // parallel)  # share the cores, do not oversubscribe them
    context = multiprocessing.get_context("spawn")  # fork and torch's thread pools do not mix
    results, running, todo, started = [None] * len(jobs), {}, list(enumerate(jobs)), time.monotonic()
    with ProcessPoolExecutor(parallel, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool, \
            _forward_sigterm(pool):
        while todo or running:
            while todo and len(running) < parallel:
                i, job = todo.pop(0)
                running[pool.submit(run_one, *job, log=None)] = i
            done, _ = wait(running, timeout=progress.HEARTBEAT_S, return_when=FIRST_COMPLETED)  # Ctrl-C here:
            if not done and log:  # runs in training save and stop
                log(_where_runs_are([jobs[i] for i in running.values()], len(jobs) - len(todo) - len(running),
                                    len(jobs), time.monotonic() - started))
            for future in done:
                i = running.pop(future)
                results[i] = future.result()
                if log:
                    log(f"{jobs[i][0].name}: done")
    return results


def _where_runs_are(jobs: list, done: int, total: int, elapsed: float) -> str:
    """A parallel sweep's heartbeat (its workers print nothing): each run in training at its last logged step."""
    steps = []
    for run, run_dir, _ in jobs:
        try:
            rows = RunFolder(run_dir).read_metrics()
        except (UserError, OSError):  # not written yet, or being replaced: no step to show
            rows = []
        at = f"step {rows[-1]['step']:,}" if rows and "step" in rows[-1] else "starting"
        budget = f" of {run.config.steps:,}" if rows and run.config.steps else ""
        steps.append(f"{run.name} at {at}{budget}")
    return f"sweep: {done} of {total} runs done; {'; '.join(steps)}; {progress.clock_text(elapsed)} elapsed"


@contextlib.contextmanager
def _forward_sigterm(pool):
    """A SIGTERM to the sweep reaches its workers too: a run in training saves its state and stops (a rerun
    resumes it), and the pool's exit waits seconds, not for whole runs. Ctrl-C needs no forwarding: the
    terminal sends it to every process of the group, and a second one would cut a worker's save short."""
    try:
        yield
    except KeyboardInterrupt as err:
        if signal_name(err) == "SIGTERM":
            for process in list(pool._processes.values()):  # the executor keeps no public list of its workers
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        raise


def _init_worker(threads: int) -> None:
    """Workers ignore Ctrl-C outside training (whose own handler saves and stops): an idle worker would
    otherwise print a KeyboardInterrupt traceback; the main process reports the interrupt once."""
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


def check_folder(spec: SweepSpec, out: Path) -> None:
    """Refuse to reuse a run folder trained with another configuration (the spec was edited)."""
    for run in spec.runs:
        _check_existing(out / "runs" / run.name, run.config)


def prepare_folder(spec: SweepSpec, spec_path: str | Path, out: str | Path | None = None) -> Path:
    """The sweep folder (default `sweeps/<spec name>`), checked against `spec` and holding a copy of the
    spec file as `sweep.toml`, so the folder says how it was made."""
    spec_path = Path(spec_path)
    out = Path(out) if out is not None else Path("sweeps") / spec_path.stem
    check_folder(spec, out)
    out.mkdir(parents=True, exist_ok=True)
    if spec_path.resolve() != (out / "sweep.toml").resolve():
        files.atomic_write_bytes(out / "sweep.toml", spec_path.read_bytes())  # atomic, as every sweep file
    return out


def _check_existing(run_dir: Path, config: TrainConfig) -> None:
    """A sweep run is its whole configuration: any change but the device makes it another run (a resume may
    change the budget, but a finished sweep run with a new budget would be skipped and show stale results)."""
    folder = RunFolder(run_dir)
    if folder.is_run():
        folder.check_config(config, may_change=frozenset({"device"}))


def _warm_judges(spec: SweepSpec) -> None:
    from difflab.evaluation import load_judge

    for key in {(r.config.dataset, r.config.data_dir, r.config.image_size) for r in spec.runs if r.config.conditional}:
        load_judge(key[0], data_dir=key[1], image_size=key[2])


def run_one(run: SweepRun, run_dir: Path, spec: EvalSpec, *, log=print) -> list[dict]:
    """Train (or resume, or skip) one run, judge it at each guidance; one table row per guidance."""
    from difflab import api

    done = run_dir / DONE
    if done.is_file():
        if log:
            log(f"{run.name}: trained already, skipped")
        info = files.read_json(done)
    else:
        started = time.monotonic()
        resume = RunFolder(run_dir).has_state()
        if log:
            log(f"{run.name}: {'resuming' if resume else 'training'}")  # the run's stage line (its bar is off)
        try:
            shown = bool(log)  # the training bar in a sequential sweep; a parallel one's workers are silent
            if resume:
                api.train(resume=run_dir, progress=shown, evaluate=False)
            else:
                api.train(run.config, out=run_dir, progress=shown, evaluate=False)
        except Stopped as err:
            if err.exit_code == Stopped.EXIT["SIGINT"]:  # Ctrl-C: training saved its state; a rerun resumes it
                raise KeyboardInterrupt from None  # `difflab: interrupted`, exit 130, no DONE marker
            raise
        info = {"train_seconds": round(time.monotonic() - started, 2), "final_loss": final_loss(run_dir)}
        files.write_json(done, info)  # atomic: a kill leaves no half-written marker
    base = {"run": run.name, **{k: _cell(v) for k, v in run.changes.items()}, **info}
    rows = []
    with progress.bar(len(spec.guidance), f"{run.name}: judging", unit="strength",
                      enabled=bool(log) and spec.judge and run.config.conditional) as shown:
        for g in spec.guidance:
            rows.append({**base, "guidance": g, **_judge(api, run, run_dir, spec, g)})
            shown.update()
    return rows


def _judge(api, run: SweepRun, run_dir: Path, spec: EvalSpec, guidance: float) -> dict:
    """Judge accuracy and mean confidence, cached as the run's evaluation `name` so a rerun does not sample again."""
    if not spec.judge or not run.config.conditional:
        return {}
    steps = spec.steps or run.config.sample_steps
    solver = spec.solver or run.config.solver
    name = f"sweep-{solver}-{steps}steps-g{guidance:g}-n{spec.n}-seed{spec.seed}"
    result = RunFolder(run_dir).read_eval(name)
    if result is None:
        from difflab.run import Run

        result = api.judge_run(Run.load(run_dir), n_per_class=spec.n, seed=spec.seed, name=name,
                                  solver=solver, steps=steps, guidance=guidance, progress=False)  # the sweep's own bar
    return {"accuracy": result["accuracy"], "mean_confidence": result["mean_confidence"]}


def final_loss(run_dir: Path) -> float | None:
    """Mean of the last 5 logged losses: one logged batch is too noisy to rank runs by."""
    losses = [r["loss"] for r in RunFolder(run_dir).read_metrics()
              if isinstance(r.get("loss"), (int, float)) and r["loss"] == r["loss"]]
    return round(sum(losses[-5:]) / len(losses[-5:]), 6) if losses else None


def sort_key(metric: str):
    """Best first: ascending for losses and times, descending for judge scores; missing values last."""
    sign = 1 if metric in LOWER_IS_BETTER else -1

    def key(row: dict):
        value = row.get(metric)
        return (value is None, sign * value if value is not None else 0.0, row["run"])

    return key


def _cell(value):
    return "-".join(fmt_value("", v) for v in value) if isinstance(value, (list, tuple)) else value


# --- results table ----------------------------------------------------------------------------
def write_results(rows: list[dict], varied: tuple[str, ...], metric: str, out: Path) -> None:
    """`results.csv` (every column), `results.md` (the same, readable) and `results.png`."""
    columns = list(dict.fromkeys(["run", *varied, "guidance", *JUDGE_METRICS, "final_loss", "train_seconds",
                                  *(k for r in rows for k in r)]))
    columns = [c for c in columns if any(c in r for r in rows)]
    import csv
    import io

    out.mkdir(parents=True, exist_ok=True)
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, columns)
    writer.writeheader()
    writer.writerows(rows)
    files.atomic_write_text(out / "results.csv", table.getvalue())  # a full disk keeps the last complete table
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt_value(c, r.get(c)) for c in columns) + " |" for r in rows]
    files.atomic_write_text(out / "results.md", f"Sorted by {metric} (best first).\n\n" + "\n".join(lines) + "\n")
    plot_metric(rows, [*varied, *(["guidance"] if len({r["guidance"] for r in rows}) > 1 else [])], metric,
                out / "results.png")


RATES = set(JUDGE_METRICS)  # fractions in [0, 1]: shown as percentages


def fmt_value(key: str, value) -> str:
    """A table cell for people: 3 significant figures (0.1 + 0.2 shows as 0.3), rates as % ("97.3%")."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "-".join(fmt_value(key, v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if key in RATES:
        return f"{100 * value:.3g}%" if value < 0.995 else f"{100 * value:.1f}%"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def plot_metric(rows: list[dict], keys: list[str], metric: str, path: Path) -> Path:
    """One panel per swept key: `metric` of every run against that key's value (categorical axis)."""
    from difflab.report.plots import plt

    keys = keys or ["run"]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), dpi=110, squeeze=False)
    for ax, key in zip(axes[0], keys):
        values = sorted({fmt_value(key, r.get(key)) for r in rows}, key=_natural)
        points = [(values.index(fmt_value(key, r.get(key))), r[metric]) for r in rows if r.get(metric) is not None]
        ax.scatter([p[0] for p in points], [p[1] for p in points], color="tab:blue")
        ax.set_xticks(range(len(values)), values, rotation=30 if len(values) > 4 else 0)
        ax.set(xlabel=key, ylabel=metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{metric} per swept value ({'lower' if metric in LOWER_IS_BETTER else 'higher'} is better)")
    fig.tight_layout()
    import io

    picture = io.BytesIO()
    fig.savefig(picture, format="png")
    plt.close(fig)
    files.atomic_write_bytes(path, picture.getvalue())
    return path


def _natural(text: str):
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)

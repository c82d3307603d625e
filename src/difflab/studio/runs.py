"""The Runs tab's facts: run folders under a directory, each one's summary line and loss curve.

Everything is read through `RunFolder` and the helpers the report uses; a damaged or foreign folder
gives a `problem` instead of an error, so one bad folder never hides the others. Nothing is written
inside a run folder: the loss curve goes to the studio's own temp folder.
"""

from __future__ import annotations

from pathlib import Path

from difflab.errors import UserError
from difflab.run import RunFolder

MAX_DEPTH = 2  # runs/<name>/ and runs/<group>/<name>/: deeper folders are not scanned
MAX_RUNS = 200  # a directory with more run folders than this is listed in part


def find_runs(root: str | Path) -> list[Path]:
    """Run folders (holding config.json) at `root` and up to `MAX_DEPTH` levels below it, sorted."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"{root} is not a directory; fix: give the folder that holds your runs (e.g. runs/)")
    found, level = [], [root]
    for _ in range(MAX_DEPTH + 1):
        found += [p for p in level if RunFolder(p).is_run()]
        level = [c for p in level if not RunFolder(p).is_run() for c in _subdirs(p)]
    return sorted(found)[:MAX_RUNS]


def _subdirs(path: Path) -> list[Path]:
    try:
        return [c for c in path.iterdir() if c.is_dir() and not c.name.startswith(".")]
    except OSError:  # unreadable: skipped
        return []


def summary(path: str | Path) -> dict:
    """`{run, steps, accuracy, fd_ratio, problem}`: the report's first numbers (None where not measured)."""
    from difflab.training.adequacy import training_facts

    folder = RunFolder(path)
    row = {"run": str(path), "steps": None, "accuracy": None, "fd_ratio": None, "problem": None}
    try:
        folder.require_run().read_config()
        folder.read_spec()
        facts = training_facts(folder)
        metrics = folder.read_metrics()
        row["steps"] = facts.steps if facts is not None else (metrics[-1].get("step") if metrics else None)
        final = folder.read_eval("final") or {}
        row["accuracy"] = final.get("accuracy")
        row["fd_ratio"] = fd_ratio(folder.read_evals())
    except (UserError, OSError, ValueError, KeyError, TypeError) as err:
        row["problem"] = str(err).splitlines()[0] if str(err) else type(err).__name__
    return row


def fd_ratio(evals: dict[str, dict]) -> float | None:
    """FD / real floor: from the newest full evaluation (`difflab evaluate`), else the guidance sweep's default row."""
    for result in reversed(list(evals.values())):
        d = result.get("distribution") if isinstance(result, dict) else None
        if isinstance(d, dict) and _positive(d.get("fd")) and _positive(d.get("floor_fd")):
            return d["fd"] / d["floor_fd"]
    sweep = evals.get("guidance_sweep") or {}
    row = next((r for r in sweep.get("rows", []) if isinstance(r, dict) and r.get("default")), None)
    return row.get("fd_ratio") if row and _positive(row.get("fd_ratio")) else None


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def summary_table(rows: list[dict]) -> str:
    """Markdown: one line per run."""
    head = "| run | steps | judge accuracy | FD / floor | note |\n|---|---|---|---|---|\n"
    body = "".join(f"| {Path(r['run']).name} | {_fmt(r['steps'], '{:,}')} | {_fmt(r['accuracy'], '{:.1%}')} | "
                   f"{_fmt(r['fd_ratio'], '{:.2f}x')} | {r['problem'] or ''} |\n" for r in rows)
    return head + (body or "| (no run folder found) | | | | |\n")


def _fmt(value, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, (int, float)) else "–"


def loss_curve(path: str | Path, out: Path) -> Path | None:
    """The run's loss and learning-rate plot (`report.plots.plot_loss`) written to `out`; None without metrics."""
    from difflab.report.plots import plot_loss

    try:
        rows = RunFolder(path).require_run().read_metrics()
        return plot_loss(rows, out)
    except (UserError, OSError, KeyError, TypeError, ValueError):
        return None


__all__ = ["fd_ratio", "find_runs", "loss_curve", "summary", "summary_table"]

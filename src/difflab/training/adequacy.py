"""Was a run trained long enough? The facts of the model a run folder holds (steps, images seen, wall
time) and the one loud line for a budget that ended too early, with its fix.

`difflab train` prints the warning and stores both in the run's model.json (`record`); the report and
`difflab sample` state the facts and repeat the warning (`describe`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from difflab.errors import UserError
from difflab.run.folder import RunFolder
from difflab.training.config import DEFAULT_STEPS

MIN_USEFUL_STEPS = 500  # the default model's EMA at 250 steps: 66% judge accuracy, FD 26x the floor; at 500: 92%,
# 6.3x; at 1,000: 98%, 3.0x (snapshots of a 2,000-step run, default sampler; benchmarks/RESULTS.md)
META_KEY = "training"  # model.json: the facts and warning of the weights beside it


@dataclass(frozen=True)
class TrainingFacts:
    """How much training the saved weights had (from the final snapshot, `state/trainer.json`)."""

    steps: int  # optimizer steps
    images: int  # training images drawn (all ranks)
    wall_minutes: float  # training time (the loop's clock)
    epochs: float | None = None  # passes over the dataset, when a metrics line gives its size

    def line(self) -> str:
        """"2,000 steps, 128,000 images seen (25.6 epochs), 4.8 min wall"."""
        epochs = f" ({self.epochs:.3g} epochs)" if self.epochs is not None else ""
        return f"{self.steps:,} steps, {self.images:,} images seen{epochs}, {self.wall_minutes:.1f} min wall"


def undertrained(steps: int, *, minutes: float | None = None, wall_minutes: float | None = None) -> str | None:
    """One line when `steps` is below `MIN_USEFUL_STEPS`, naming the fix; None otherwise. `minutes`: the run's
    wall-clock budget, if it had one (then speed, not the user, chose the step count)."""
    if steps >= MIN_USEFUL_STEPS:
        return None
    line = (f"WARNING: only {steps:,} optimizer steps (default {DEFAULT_STEPS:,}): samples of so short a run are "
            f"mostly noise; fix: --steps {DEFAULT_STEPS}")
    if minutes is not None:
        spent = f"{wall_minutes:.1f}" if wall_minutes is not None else f"{minutes:g}"
        line += f" (or a longer --minutes: {steps:,} steps in {spent} min here; a busy machine makes fewer)"
    return line


def training_facts(folder: RunFolder) -> TrainingFacts | None:
    """The facts of `folder`'s weights, or None where there is no snapshot (a distilled run: its teacher's)."""
    if folder.read_distill() is not None or not folder.has_state():
        return None
    try:
        info = folder.read_state_info()
        steps, images, elapsed = int(info["step"]), int(info["seen"]), float(info["elapsed"])
    except (KeyError, TypeError, ValueError, UserError):  # damaged, or of an older difflab: no facts, no failure
        return None
    last = next((r for r in reversed(folder.read_metrics()) if _positive(r.get("step")) and _positive(r.get("epoch"))),
                None)
    epochs = last["epoch"] * steps / last["step"] if last else None  # the logged epoch, scaled to the final step
    return TrainingFacts(steps, images, round(elapsed / 60, 2), epochs)


def describe(folder: RunFolder) -> tuple[TrainingFacts | None, str | None]:
    """(facts, warning) of a run folder's weights; (None, None) when it holds no snapshot."""
    facts = training_facts(folder)
    if facts is None:
        return None, None
    return facts, undertrained(facts.steps, minutes=folder.read_config().minutes, wall_minutes=facts.wall_minutes)


def record(folder: RunFolder) -> str | None:
    """Store the facts and warning in the run's model.json (key `training`); returns the warning."""
    facts, warning = describe(folder)
    if facts is None:
        return None
    meta = folder.read_meta()
    meta[META_KEY] = {**asdict(facts), "warning": warning}
    folder.write_meta(meta)
    return warning


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


__all__ = ["MIN_USEFUL_STEPS", "TrainingFacts", "describe", "record", "training_facts", "undertrained"]

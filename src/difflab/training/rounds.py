"""One progressive-distillation round, on the training loop.

The same machinery as `Trainer`: the optimisation `Step` (clipping at 1.0, non-finite steps skipped),
the `Loop` under `StopRequests`, a `Budget` (iterations and/or minutes: the first reached ends the
round), metrics rows through `RunFolder` and the progress bar. What differs is the loss (the student's
x̂₀ against the two-step teacher's x̃, `distill.student_loss`), the schedule (AdamW, `LinearDecay` to 0
over the round) and that there is no EMA. A round is not resumable and runs in one process: an
interrupted distillation keeps the run of its last finished round.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch

from difflab import precision
from difflab.errors import Stopped
from difflab.run.folder import RunFolder
from difflab.training.budget import Budget, Counters, LinearDecay
from difflab.training.distill import DistillConfig, RoundTargets, student_loss
from difflab.training.loop import Loop
from difflab.training.metrics_log import MetricsLog
from difflab.training.progress import Progress
from difflab.training.step import Step
from difflab.training.stopping import StopRequests


def round_loss(student: torch.nn.Module, targets: RoundTargets, objective: str, data, config: DistillConfig,
               generator: torch.Generator, counters: Counters) -> Callable[[], torch.Tensor]:
    """The round's loss on a fresh batch (drawn with replacement) of the run's images `(N, C, H, W)`."""
    images, labels = data

    def forward(z_t, t, cond):  # (B, C, H, W): the student's prediction, fp32 whatever the autocast
        with precision.autocast(config.precision, images.device):
            return student(z_t, t, cond).float()

    def loss() -> torch.Tensor:
        idx = torch.randint(0, len(images), (config.batch_size,), generator=generator).to(images.device)
        counters.seen += len(idx)
        cond = labels[idx] if labels is not None else None
        z_t, t, x_tilde = targets(images[idx], cond, generator)
        return student_loss(forward, objective, targets.alphas_cumprod, z_t, t, cond, x_tilde)

    return loss


def run_round(student: torch.nn.Module, targets: RoundTargets, objective: str, data, config: DistillConfig,
              generator: torch.Generator, *, folder: RunFolder, fields: dict, step_offset: int = 0,
              label: str = "round", show_progress: bool = True) -> dict:
    """Fit `student` to `targets` within the round's budget; returns the round's summary. Each step is a
    metrics row with `fields` added, numbered on from `step_offset` (the rows of the earlier rounds)."""
    counters, losses = Counters(), []
    budget, schedule = Budget(steps=config.iterations, minutes=config.minutes_per_round), LinearDecay(config.lr)
    progress = lambda: budget.fraction(counters)
    lr = lambda: schedule(counters.step, progress())
    step = Step(student, torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=0.0), counters,
                grad_clip=1.0, advice=lambda: "fix: a lower --lr")
    loss = round_loss(student, targets, objective, data, config, generator, counters)
    bar = Progress(progress, counters, label=label, enabled=show_progress)
    log = MetricsLog(folder, counters, lr=lr, extra=lambda: fields, step_offset=step_offset)
    loop = Loop(lambda: step(loss, lr()), step.settle, progress, counters, log_every=1,
                on_log=[log, bar, lambda value, _: losses.append(value)])
    started = time.monotonic()
    student.train().requires_grad_(True)
    try:
        with StopRequests() as stop:
            stopped = loop.run(stop)
    finally:
        bar.close()
        student.eval().requires_grad_(False)
    if stopped:
        raise Stopped(f"stopped by {stopped} in {label} (iteration {counters.step}); the run of the last "
                      f"finished round, if any, is in {folder.path}", stopped)
    finite = [v for v in losses if math.isfinite(v)]
    tail = finite[-max(1, len(finite) // 10):]
    return {"iterations": counters.step, "seconds": round(time.monotonic() - started, 1),
            "final_loss": round(sum(tail) / len(tail), 6) if tail else None}


__all__ = ["round_loss", "run_round"]

"""The Trainer: builds one run's pieces and drives the loop (AdamW, warm-up + cosine LR, clipping, EMA, CFG dropout).

The network comes from outside (`model_factory`); the jobs around the loop are collaborators with one job
each: pieces.py (what is built from the config), budget.py, batches.py, losses.py, step.py (the non-finite
guard), loop.py, and its callbacks
metrics_log.py, progress.py, sample_grids.py, checkpointing.py. All randomness of the loop comes from
generators saved in the snapshot, so a resumed run continues exactly.
"""

from __future__ import annotations

from pathlib import Path

import torch

from difflab import precision
from difflab.errors import Stopped, UserError
from difflab.nn.spec import ModelFactory
from difflab.run.folder import RunFolder
from difflab.training import distributed
from difflab.training.batches import Batches
from difflab.training.budget import Budget, Counters, WarmupCosine
from difflab.training.checkpointing import Checkpoints, SaveEvery
from difflab.training.config import TrainConfig
from difflab.training.distributed import resolve_device  # re-exported: api, distill
from difflab.training.faults import Faults
from difflab.training.guide import GuideSnapshot
from difflab.training.loop import Loop
from difflab.training.losses import DiffusionLoss
from difflab.training.metrics_log import MetricsLog
from difflab.training.pieces import build_pieces
from difflab.training.progress import Progress
from difflab.training.sample_grids import SampleGrids
from difflab.training.step import MAX_BAD_STEPS, Step
from difflab.training.stopping import StopRequests
from difflab.training.threads import ThreadGovernor, meta_recorder
from difflab.training.tracking import Tracker, open_tracker


def _counter(owner: str, name: str) -> property:
    """A read-only view of a collaborator's counter (`trainer.step` is `trainer.counters.step`)."""
    return property(lambda self: getattr(getattr(self, owner), name))


class Trainer:
    """One run: `Trainer(config, run_dir).run()`; `resume=True` continues from `run_dir/state`."""

    step, seen, elapsed = _counter("counters", "step"), _counter("counters", "seen"), _counter("counters", "elapsed")
    bad_steps, skipped_steps = _counter("stepper", "bad"), _counter("stepper", "skipped")

    def __init__(self, config: TrainConfig, run_dir: Path, *, resume: bool = False, show_progress: bool = True,
                 allow_rng_reset: bool = False, check_every_step: bool | None = None,
                 model_factory: ModelFactory | None = None):
        self.config, self.run_dir, self.folder = config, Path(run_dir), RunFolder(run_dir)
        self.show_progress, main = show_progress and distributed.is_main(), distributed.is_main()
        self.faults = Faults.from_env()  # test hooks, read now: tests set the environment in-process
        self.device = distributed.local_device(resolve_device(config.device))
        if check_every_step is None:  # free on a CPU; on a GPU it would stall the queue every step
            check_every_step = self.device.type == "cpu" and not self.faults.deferred_checks
        self.check_every_step = check_every_step
        pieces = build_pieces(config, self.device, model_factory)  # pieces.py: data, network, EMA, AdamW, schedule
        self.data, self.conditioning, self.class_prompts = pieces.data, pieces.conditioning, pieces.class_prompts
        self.model, self.ema, self.net, self.optimizer = pieces.model, pieces.ema, pieces.net, pieces.optimizer
        self.alphas_cumprod = pieces.alphas_cumprod
        self.counters, self.tracker = Counters(), Tracker()  # the tracker does nothing until run() opens one
        self.budget, self.schedule = Budget.of(config, len(self.data)), WarmupCosine.of(config)
        self.generator = torch.Generator().manual_seed(config.seed)  # data order (CPU, once per epoch)
        self.draws = (self.generator if self.device.type == "cpu"  # timesteps, noise, dropout: where they are used
                      else torch.Generator(self.device).manual_seed(config.seed))
        self.batches = Batches(self.data.images, config.batch_size, self.generator, self.counters, self.device)
        self.loss = DiffusionLoss(config, self.net, self.conditioning, self.alphas_cumprod, self.draws,
                                  precision.resolve_precision(config.precision, self.device), self.device)
        self.stepper = Step(self.model, self.optimizer, self.counters, ema=self.ema, grad_clip=config.grad_clip,
                            check_every_step=check_every_step, max_bad=MAX_BAD_STEPS,  # read now: tests patch it
                            advice=lambda: f"{self.checkpoints.last_good()}; fix: lower --lr, then --resume {self.run_dir}")
        self.faults.install(self.stepper)
        self.threads = ThreadGovernor(self.device, record=meta_recorder(self.folder) if main else None)  # threads.py
        self.metrics = MetricsLog(self.folder, self.counters, lr=self.learning_rate, tracker=lambda: self.tracker,
                                  extra=lambda: {"epoch": round(self.seen / len(self.data), 3), **self.threads.fields()},
                                  enabled=main)
        self.grids = SampleGrids(self.folder, config, self.ema.model, self.data.class_names, self.class_prompts,
                                 progress=self.progress, counters=self.counters, tracker=lambda: self.tracker,
                                 enabled=main)
        self.checkpoints = Checkpoints(self.folder, allow_rng_reset=allow_rng_reset)
        (self.checkpoints.restore if resume else self.checkpoints.start)(self)

    def progress(self) -> float:
        """Fraction of the budget used: the largest over steps, epochs and minutes."""
        return self.budget.fraction(self.counters)

    def learning_rate(self) -> float:
        return self.schedule(self.counters.step, self.progress())

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batches.next()

    def train_step(self) -> torch.Tensor:
        """One AdamW step on the next batch; returns its loss (0-dim, on the device; NaN when skipped)."""
        return self.stepper(lambda: self.loss(*self.next_batch()), self.learning_rate())

    def settle(self) -> None:
        self.stepper.settle()

    def run(self) -> Path:
        """Train to the budget; SIGINT/SIGTERM save at the next step boundary; write errors stop cleanly."""
        if distributed.is_main():  # fails here, before training, if a package is missing
            self.tracker = open_tracker(self.config, self.run_dir)
        bar = Progress(self.progress, self.counters, enabled=self.show_progress)
        loop = Loop(self.train_step, self.settle, self.progress, self.counters, log_every=self.config.log_every,
                    agree_each_step=self.check_every_step or distributed.world_size() == 1,
                    on_log=[self._log, bar], on_step=[self.grids, SaveEvery(self.config.checkpoint_minutes, self.save),
                                                      GuideSnapshot(self.folder, self.ema.model, self.progress,
                                                                    self.config.guide_at, enabled=distributed.is_main()),
                                                      self.threads],
                    stop_signal=self.faults.stop_check())
        try:
            with StopRequests() as stop:
                stopped = loop.run(stop)
                self.save()
                distributed.barrier()  # the other ranks exit only once rank 0's snapshot is on disk
        except OSError as err:  # disk full, folder gone, permissions: the snapshot on disk is untouched
            raise UserError(f"cannot write to {self.run_dir} ({err.strerror or err}); "
                            f"{self.checkpoints.last_good()}; fix: free space or permissions, then --resume") from None
        finally:
            bar.close()
            self.tracker.close()
            self.threads.restore()
            self.checkpoints.close()  # the folder's lock: another process may write it now
        if stopped:
            raise Stopped(f"stopped by {stopped} at step {self.step}; state saved: continue with "
                          f"difflab train --resume {self.run_dir}", stopped)
        return self.run_dir

    def _log(self, loss: float | torch.Tensor, images_per_s: float) -> None:
        self.metrics(loss, images_per_s)

    def save(self) -> None:
        """Settle the skip counters (exact in the snapshot; a stop after too many bad steps), then snapshot."""
        self.settle()
        self.checkpoints.save(self)


__all__ = ["MAX_BAD_STEPS", "Trainer", "resolve_device"]

"""The run folder's resumable side: a new run's folder, snapshots into `state/` (through `RunFolder`:
atomic, self-consistent) and their restore (weights, optimizer, counters, every RNG, metrics trimmed
to the snapshot), plus the timer that takes a snapshot every `checkpoint_minutes`. Only rank 0 writes,
and only while it holds the folder's lock (taken in `start`/`restore`, let go in `close`). A snapshot is
checked whole against this run's network before any of it is used; non-finite weights are never saved."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from difflab.errors import UserError
from difflab.run import files
from difflab.run.folder import RunFolder
from difflab.run.lock import RunLock
from difflab.training import distributed, optimizer_state, rngstate

if TYPE_CHECKING:
    from difflab.training.trainer import Trainer


class Checkpoints:
    def __init__(self, folder: RunFolder, *, allow_rng_reset: bool = False) -> None:
        self.folder, self.allow_rng_reset = folder, allow_rng_reset
        self.saved_step: int | None = None  # step of the newest snapshot on disk (the last good checkpoint)
        self.lock: RunLock | None = None  # rank 0's hold on the folder while it trains

    def own(self) -> None:
        """Rank 0 becomes the folder's one writer (a one-line refusal while another process trains into it)."""
        if distributed.is_main() and self.lock is None:
            self.folder.path.mkdir(parents=True, exist_ok=True)
            self.lock = self.folder.lock().acquire()

    def close(self) -> None:
        """Let the folder go (the end of training, or a refusal before it)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def last_good(self) -> str:
        if self.saved_step is None:
            return "no checkpoint was written yet"
        return f"last good checkpoint: {self.folder.state_dir} (step {self.saved_step})"

    def start(self, t: Trainer) -> None:
        """A new run: refuse a folder that holds one; rank 0 writes config, model description, empty metrics."""
        self.own()
        if self.folder.state_dir.exists():
            self.close()
            raise UserError(f"{self.folder.path} already holds a run; fix: --resume {self.folder.path} or another --out")
        try:
            self._begin(t)
        except BaseException:
            self.close()
            raise

    def _begin(self, t: Trainer) -> None:
        if not distributed.is_main():
            return
        meta = {"class_names": list(t.data.class_names), "image_shape": list(t.data.image_shape),
                "model": t.model.spec.to_dict()}
        if t.class_prompts is not None:
            meta.update(text_encoder=t.config.text_encoder, class_prompts=t.class_prompts)
        self.folder.create(t.config, meta)

    def save(self, t: Trainer) -> None:
        """The resumable snapshot (atomic, self-consistent), then the user-facing weights.

        Snapshot first: a write error in it leaves every file of the run as it was."""
        if not distributed.is_main():
            self.saved_step = t.step  # the others hold the same weights; they only need the step for messages
            return
        bad = files.nonfinite({**t.model.state_dict(), **{f"ema.{k}": v for k, v in t.ema.model.state_dict().items()}})
        if bad:
            raise UserError(f"the weights at step {t.step} hold NaN or infinite values (e.g. {bad[0]}), so nothing was "
                            f"saved; {self.last_good()}; fix: a lower --lr, then --resume {self.folder.path}")
        opt_tensors, opt_meta = optimizer_state.optimizer_tensors(t.optimizer)
        rng, rng_info = rngstate.capture(t.generator, t.batches.order, t.draws)
        n = t.counters
        info = {"step": n.step, "position": t.batches.position, "seen": n.seen, "elapsed": n.elapsed,
                "ema_updates": t.ema.updates, "grids_written": t.grids.written, "optimizer": opt_meta,
                "skipped_steps": t.stepper.skipped, "rng": rng_info, "config": t.config.to_dict()}
        tensors = {"model": t.model.state_dict(), "ema": t.ema.model.state_dict(), "optimizer": opt_tensors, "rng": rng}
        self.folder.write_state(tensors, info)
        self.saved_step = n.step
        self.folder.save_weights("model", t.model.state_dict())
        self.folder.save_weights("ema", t.ema.model.state_dict())

    def restore(self, t: Trainer) -> None:
        """Continue from the snapshot: it must fit this run's config and network exactly. A run stopped before
        its first checkpoint has none: it starts again from step 0 with its saved config, and says so."""
        self.own()
        try:
            if self._never_checkpointed():
                if distributed.is_main():
                    print(f"difflab: {self.folder.path} stopped before its first checkpoint; starting it again from "
                          "step 0 with its saved config", file=sys.stderr)
                self._begin(t)
                return
            tensors, info = self._read()
            self.folder.check_config(t.config, saved=info.get("config", {}))
            self._check(t, tensors, info)
            self._load(t, tensors, info)
        except BaseException:
            self.close()
            raise

    def _never_checkpointed(self) -> bool:
        """Rank 0 repairs an interrupted write first, so every rank sees the same answer."""
        if distributed.is_main():
            self.folder.recover_state()
        distributed.barrier()
        return self.folder.never_checkpointed()

    def _check(self, t: Trainer, tensors: dict, info: dict) -> None:
        """Every tensor and counter of the snapshot against this run, before any of it is used."""
        state = self.folder.state_dir
        for name, model in (("model", t.model), ("ema", t.ema.model)):
            files.check_tensors(state / f"{name}.safetensors", tensors[name], model.state_dict())
        optimizer_state.check_optimizer(t.optimizer, tensors["optimizer"], info.get("optimizer"),
                                        state / "optimizer.safetensors")
        missing = [k for k in ("position", "seen", "elapsed", "ema_updates", "grids_written") if k not in info]
        if missing:
            raise UserError(f"{state} does not fit this run (trainer.json lacks {', '.join(missing)}); "
                            "fix: start a new run")
        if rngstate.has_rng(tensors, info):
            order, n = tensors["rng"].get("order"), len(t.data)
            if order is None or order.dtype != torch.int64 or not torch.equal(order.sort().values, torch.arange(n)):
                raise UserError(f"{state / 'rng.safetensors'}: the saved data order is not an order of the "
                                f"{n} training images; fix: start a new run, or restore the folder from a copy")
            if info["position"] > n:
                raise UserError(f"{state}/trainer.json: position {info['position']} is past the {n} training images; "
                                "fix: start a new run")

    def _load(self, t: Trainer, tensors: dict, info: dict) -> None:
        try:
            t.model.load_state_dict(tensors["model"])
            t.ema.model.load_state_dict(tensors["ema"])
            optimizer_state.load_optimizer(t.optimizer, tensors["optimizer"], info["optimizer"])
            optimizer_state.keep_fused(t.optimizer)  # a snapshot of an older (foreach) run would switch fused off
            t.counters.step, t.batches.position, t.counters.seen = info["step"], info["position"], info["seen"]
            t.counters.elapsed, t.ema.updates, t.grids.written = info["elapsed"], info["ema_updates"], info["grids_written"]
        except (KeyError, ValueError, RuntimeError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserError(f"{self.folder.state_dir} does not fit this run ({first}); fix: start a new run") from None
        t.stepper.skipped, self.saved_step = info.get("skipped_steps", 0), t.counters.step
        self._restore_rng(t, tensors, info)
        if distributed.is_main():
            self.folder.trim_metrics(t.counters.step)  # lines written after the snapshot: no duplicates

    def _read(self) -> tuple[dict, dict]:
        """Rank 0 repairs an interrupted write and reads; the other ranks then read the same snapshot, read-only."""
        if not distributed.is_main():
            distributed.barrier()
        state = self.folder.read_state(recover=distributed.is_main())
        if distributed.is_main():
            distributed.barrier()
        return state

    def _restore_rng(self, t: Trainer, tensors: dict, info: dict) -> None:
        """Exact resume needs every generator; without them, continue only when the user accepts it."""
        if rngstate.has_rng(tensors, info):
            try:
                t.batches.set_order(rngstate.restore(t.generator, tensors["rng"], info["rng"], t.draws))
            except (OverflowError, IndexError, AttributeError) as err:  # numbers in trainer.json's rng past C's range
                raise UserError(f"{self.folder.state_dir}/trainer.json: the saved RNG state is damaged ({err}); "
                                "fix: start a new run, or restore the folder from a copy") from None
        elif not self.allow_rng_reset:
            raise UserError(f"{self.folder.state_dir} has no RNG state, so the resume would not be exact; "
                            "fix: --allow-rng-reset to continue with fresh random numbers")


class SaveEvery:
    """A step callback: `save()` once `minutes` have passed since the loop started or the last save."""

    def __init__(self, minutes: float, save: Callable[[], None]) -> None:
        self.seconds, self.save, self.last = 60 * minutes, save, time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.last > self.seconds:
            self.save()
            self.last = time.monotonic()


__all__ = ["Checkpoints", "SaveEvery"]

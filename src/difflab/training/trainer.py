"""The training loop: tensor-resident data, AdamW, warm-up + cosine LR, clipping, EMA, CFG dropout.

Writes a run folder as it goes (config.json, metrics.jsonl, samples/, model and EMA weights, and the
resumable `state/`). All randomness of the loop (data order, timesteps, noise, label dropout) comes
from generators saved in the state (one on CPU; on a GPU the per-step draws come from a second one on
the device), so a resumed run continues exactly.

Host reads: on a GPU a step reads nothing back (a value read on the host, or a copy from pageable host
memory, makes the host wait for the GPU, so the two never overlap). The non-finite check then happens
on the device (fused AdamW's `found_inf` skips the update, the EMA takes a zero step) and the loop
reads the loss and the skip counters every `log_every` steps. On a CPU reading is free, so every step
checks at once.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from difflab.data import ImageDataset, load_dataset
from difflab.diffusion import NoiseSchedule, q_sample, target
from difflab.errors import UserError
from difflab.nn.unet import UNet
from difflab import precision
from difflab.training import checkpoint as ckpt
from difflab.training import distributed, rngstate
from difflab.training.conditioning import TextConditioning, make_conditioning
from difflab.training.config import DENOISE, TrainConfig
from difflab.training.faults import Faults
from difflab.training.ema import EMA
from difflab.training.progress import Progress
from difflab.training.stopping import StopRequests
from difflab.training.tracking import Tracker, open_tracker

MAX_BAD_STEPS = 20  # consecutive non-finite losses/gradients before training stops
RESUMABLE_CHANGES = frozenset({  # config keys a resume may change: budget, bookkeeping, speed, sampling defaults
    "steps", "epochs", "minutes", "device", "log_every", "checkpoint_minutes", "num_sample_grids",
    "solver", "sample_steps", "guidance", "tensorboard", "wandb", "mlflow", "precision", "compile"})


def config_diff(saved: dict, new: dict) -> list[str]:
    """`key: old -> new` for every key a resume may not change."""
    return [f"{k}: {v!r} -> {new.get(k)!r}" for k, v in saved.items() if k not in RESUMABLE_CHANGES and new.get(k) != v]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA GPU; fix: --device cpu")
    return torch.device(name)


def build_model(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int, *, text_dim: int = 0) -> UNet:
    """The run's U-Net; `text_dim` > 0 makes it text-conditional (cross-attention) instead of class-conditional."""
    channels, size, _ = image_shape
    text = config.conditional and config.conditioning == "text"
    cross = config.cross_attention_levels
    return UNet(
        in_channels=channels, image_size=size, channels=config.channels, blocks_per_level=config.blocks_per_level,
        attention_levels=config.attention_levels, num_classes=num_classes if config.conditional and not text else 0,
        dropout=config.dropout, time_conditioning=config.objective != DENOISE,  # the denoiser never sees t
        text_dim=text_dim if text else 0,
        cross_attention_levels=((len(config.channels) - 1,) if cross is None else cross) if text else (),
    )


class Trainer:
    """One run: `Trainer(config, run_dir).run()`; `resume=True` continues from `run_dir/state`."""

    def __init__(self, config: TrainConfig, run_dir: Path, *, resume: bool = False, show_progress: bool = True,
                 allow_rng_reset: bool = False, check_every_step: bool | None = None):
        self.config, self.run_dir, self.show_progress = config, Path(run_dir), show_progress and distributed.is_main()
        self.allow_rng_reset, self.faults, self.attempts = allow_rng_reset, Faults.from_env(), 0
        self.saved_step: int | None = None  # step of the newest snapshot on disk (the last good checkpoint)
        self.device = distributed.local_device(resolve_device(config.device))
        if check_every_step is None:  # free on a CPU; on a GPU it would stall the queue every step
            check_every_step = self.device.type == "cpu" and not self.faults.deferred_checks
        self.check_every_step = check_every_step
        self.precision = precision.resolve_precision(config.precision, self.device)  # "auto" -> fp32 | bf16 here
        self.data: ImageDataset = load_dataset(config.dataset, data_dir=config.data_dir, image_size=config.image_size)
        c, h, w = self.data.image_shape
        if h != w:
            raise UserError(f"{config.dataset}: images must be square, got {h}x{w}; fix: --image-size N")
        self.conditioning = make_conditioning(config.conditioning, self.data, conditional=config.conditional,
                                              encoder=config.text_encoder, device=self.device)
        text = isinstance(self.conditioning, TextConditioning)  # per class, what `--label k` means for a text model
        self.class_prompts = self.conditioning.class_prompts(self.data) if text else None
        torch.manual_seed(config.seed)
        self.model = build_model(config, self.data.image_shape, self.data.num_classes,
                                 text_dim=getattr(self.conditioning, "text_dim", 0)).to(self.device)
        self.ema = EMA(self.model, config.ema_decay)
        self.net = distributed.wrap(self.model)  # what the forward pass goes through: DDP with many processes
        if config.compile:
            self.net = torch.compile(self.net)  # the saved weights stay those of `self.model` (no `_orig_mod.`)
        self.optimizer = torch.optim.AdamW(  # fused: one kernel, and `found_inf` lets the device skip a step
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True
        )
        self.alphas_cumprod = NoiseSchedule(config.schedule, config.num_timesteps).alphas_cumprod.to(self.device)
        self.generator = torch.Generator().manual_seed(config.seed)  # data order (CPU, once per epoch)
        self.draws = (self.generator if self.device.type == "cpu"  # timesteps, noise, dropout: where they are used
                      else torch.Generator(self.device).manual_seed(config.seed))
        self.images = self.data.images.to(self.device)  # (N, C, H, W), resident: batches are gathers
        self.set_order(torch.randperm(len(self.data), generator=self.generator))
        self.step, self.position, self.seen, self.elapsed, self.bad_steps = 0, 0, 0, 0.0, 0
        self.skipped_steps = 0  # non-finite steps skipped over the whole run (saved in the state)
        self.skips: torch.Tensor | None = None  # deferred checks: (skipped, consecutive bad) on the device
        self.grids_written = 0
        self.tracker: Tracker = Tracker()  # does nothing until run() opens the ones the config asks for
        if resume:
            self._restore()
        else:
            self._start_folder()

    # --- budget and schedule -------------------------------------------------------------------
    def progress(self) -> float:
        """Fraction of the budget used: the largest over steps, epochs and minutes."""
        c, fractions = self.config, [0.0]
        if c.steps:
            fractions.append(self.step / c.steps)
        if c.epochs:
            fractions.append(self.seen / (c.epochs * len(self.data)))
        if c.minutes:
            fractions.append(self.elapsed / (60 * c.minutes))
        return max(fractions)

    def learning_rate(self) -> float:
        """Linear warm-up, then cosine decay to `lr * min_lr_ratio` over the budget."""
        c = self.config
        warm = min(1.0, (self.step + 1) / max(1, c.warmup_steps))
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, self.progress())))
        return c.lr * warm * (c.min_lr_ratio + (1 - c.min_lr_ratio) * cosine)

    # --- one optimisation step -----------------------------------------------------------------
    def set_order(self, order: torch.Tensor) -> None:
        """The epoch's data order: kept on CPU (saved in the state) and copied to the device once."""
        self.order, self.device_order = order, order.to(self.device)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Images `(B, C, H, W)` and their dataset indices `(B,)` (on the device): the conditioning looks them up."""
        if self.position + self.config.batch_size > len(self.order):
            self.set_order(torch.randperm(len(self.data), generator=self.generator))
            self.position = 0
        idx = self.device_order[self.position : self.position + self.config.batch_size]
        self.position += len(idx)
        self.seen += len(idx)
        return self.images[idx], idx

    def loss(self, x0: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        c, g, b = self.config, self.draws, x0.shape[0]
        if c.objective == DENOISE:
            return self.denoise_loss(x0)
        t = torch.randint(0, c.num_timesteps, (b,), generator=g, device=g.device)
        noise = torch.randn(x0.shape, generator=g, device=g.device)  # (B, C, H, W)
        drop = torch.rand(b, generator=g, device=g.device) < c.cond_dropout  # (B,) CFG: these see the null branch
        cond = self.conditioning.batch(idx, drop, g) if self.conditioning else None
        x0, t, noise, cond = distributed.shard(x0, t, noise, cond)  # this rank's rows of the global batch
        with self.autocast():
            prediction = self.net(q_sample(x0, t, noise, self.alphas_cumprod), t, cond)
        return F.mse_loss(prediction.float(), target(c.objective, x0, noise, t, self.alphas_cumprod))

    def denoise_loss(self, x0: torch.Tensor) -> torch.Tensor:
        """The single-step denoiser: L2 between D(x + sigma*eps) and x, one fixed sigma, t unused."""
        c, g = self.config, self.draws
        noise = torch.randn(x0.shape, generator=g, device=g.device)  # (B, C, H, W)
        t = torch.zeros(x0.shape[0], dtype=torch.long, device=self.device)  # ignored by the model
        cond = self.conditioning.null(x0.shape[0]) if self.conditioning else None  # null branch: unconditional
        x0, t, noise, cond = distributed.shard(x0, t, noise, cond)  # this rank's rows of the global batch
        with self.autocast():
            prediction = self.net(x0 + c.sigma * noise, t, cond)
        return F.mse_loss(prediction.float(), x0)

    def autocast(self) -> torch.autocast:
        """bf16 autocast of the forward pass when `precision` asks for it (weights, loss, AdamW stay fp32)."""
        return precision.autocast(self.precision, self.device)

    def train_step(self) -> torch.Tensor:
        """One AdamW step on the next batch; returns its loss (0-dim, on the device; NaN when skipped).

        A non-finite loss or gradient never reaches the weights, the EMA or Adam's moments. Checked every
        step, a skip does not count toward the budget; with deferred checks (GPU) it does, and the
        counters are settled at the next log line."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        self.attempts += 1
        loss = self.faults.poison_loss(self.loss(*self.next_batch()), self.attempts)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.faults.poison_grads(self.model, self.attempts)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        loss = distributed.mean(loss).detach()  # the global batch's loss: every rank skips (or not) the same steps
        ok = torch.isfinite(loss) & torch.isfinite(grad_norm)  # 0-dim bool, on the device
        if not self.check_every_step:
            return self._deferred_step(loss, ok)
        if not ok:
            self.bad_steps += 1  # skipped: a NaN/inf never reaches the weights
            self.skipped_steps += 1
            self._stop_if_too_many_bad()
            return torch.full_like(loss, math.nan)
        self.bad_steps = 0
        self.optimizer.step()
        self.ema.update(self.model)
        self.step += 1
        return loss

    def _deferred_step(self, loss: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
        """The step without reading `ok` on the host: the device skips the update itself."""
        if self.skips is None:
            self.skips = torch.tensor([self.skipped_steps, self.bad_steps], device=self.device)
        bad = (~ok).long()
        self.optimizer.found_inf = bad.float()  # fused AdamW: no change to weights, moments or its step count
        try:
            self.optimizer.step()
        finally:
            del self.optimizer.found_inf
        self.ema.update(self.model, where=ok)
        self.skips += bad  # (skipped, consecutive bad) ...
        self.skips[1] *= bad  # ... the run of bad steps ends at a good one
        self.step += 1
        return torch.where(ok, loss, math.nan)

    def settle(self) -> None:
        """Deferred checks: read the skip counters (one host read) and stop after too many bad steps in a row."""
        if self.skips is not None:
            self.skipped_steps, self.bad_steps = self.skips.tolist()
            self._stop_if_too_many_bad()

    def _stop_if_too_many_bad(self) -> None:
        if self.bad_steps >= MAX_BAD_STEPS:
            raise UserError(f"{self.bad_steps} consecutive non-finite losses or gradients at step {self.step}; "
                            f"{self._last_good()}; fix: lower --lr, then --resume {self.run_dir}")

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> Path:
        """Train to the budget; SIGINT/SIGTERM save at the next step boundary; write errors stop cleanly."""
        if distributed.is_main():  # fails here, before training, if a package is missing
            self.tracker = open_tracker(self.config, self.run_dir)
        bar = Progress(self.config, enabled=self.show_progress)
        try:
            with StopRequests() as stop:
                stopped = self._loop(bar, stop)
                self.save()
                distributed.barrier()  # the other ranks exit only once rank 0's snapshot is on disk
        except OSError as err:  # disk full, folder gone, permissions: the snapshot on disk is untouched
            raise UserError(f"cannot write to {self.run_dir} ({err.strerror or err}); {self._last_good()}; "
                            "fix: free space or permissions, then --resume") from None
        finally:
            bar.close()
            self.tracker.close()
        if stopped:
            raise UserError(f"stopped by {stopped} at step {self.step}; state saved: continue with "
                            f"difflab train --resume {self.run_dir}")
        return self.run_dir

    def _loop(self, bar: Progress, stop: StopRequests) -> str | None:
        """Train until the budget is spent or a stop is asked for; returns the stop signal's name, if any."""
        last_save, window_start, window_seen = time.monotonic(), time.monotonic(), self.seen
        started, elapsed0, clock, requested = time.monotonic(), self.elapsed, self.elapsed, None
        # Every rank agrees on the clock and on a stop, so all leave the loop at the same step. With deferred
        # checks on many GPUs that collective waits only every log_every steps; budgets use the agreed clock.
        agree_each_step = self.check_every_step or distributed.world_size() == 1
        while True:
            requested = requested or stop.requested or self.faults.stop_signal(self.step)
            if agree_each_step or self.step % self.config.log_every == 0:
                self.elapsed, stopped = distributed.agree(clock, requested)
                if stopped or self.progress() >= 1.0:
                    return stopped
            loss = self.train_step()
            clock = elapsed0 + time.monotonic() - started
            if agree_each_step:
                self.elapsed = clock
            if self.step % self.config.log_every == 0:
                self.settle()
                loss = float(loss)  # the one host read of the loss per log line
                ips = (self.seen - window_seen) / max(1e-9, time.monotonic() - window_start)
                window_start, window_seen = time.monotonic(), self.seen
                self._log(loss, ips)
                bar.update(self, loss, ips)
            self._maybe_write_grid()
            if time.monotonic() - last_save > 60 * self.config.checkpoint_minutes:
                self.save()
                last_save = time.monotonic()

    def _last_good(self) -> str:
        if self.saved_step is None:
            return "no checkpoint was written yet"
        return f"last good checkpoint: {self.run_dir / ckpt.STATE_DIR} (step {self.saved_step})"

    # --- run folder ----------------------------------------------------------------------------
    def _start_folder(self) -> None:
        if distributed.is_main():
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if (self.run_dir / ckpt.STATE_DIR).exists():
            raise UserError(f"{self.run_dir} already holds a run; fix: --resume {self.run_dir} or another --out")
        if not distributed.is_main():  # only rank 0 writes
            return
        for sub in ("samples", "plots"):
            (self.run_dir / sub).mkdir(exist_ok=True)
        self.config.save(self.run_dir / "config.json")
        (self.run_dir / "metrics.jsonl").write_text("")
        meta = {"class_names": list(self.data.class_names), "image_shape": list(self.data.image_shape),
                "model": self.model.config}
        if self.class_prompts is not None:
            meta.update(text_encoder=self.config.text_encoder, class_prompts=self.class_prompts)
        ckpt.atomic_write_text(self.run_dir / "model.json", json.dumps(meta, indent=2))

    def _log(self, loss: float | torch.Tensor, images_per_s: float) -> None:
        if not distributed.is_main():  # only rank 0 writes (its loss is already the mean over ranks)
            return
        row = {"step": self.step, "loss": round(float(loss), 6), "lr": self.learning_rate(),
               "images_per_s": round(images_per_s, 1), "elapsed": round(self.elapsed, 2), "epoch": round(self.seen / len(self.data), 3)}
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        self.tracker.log_scalars(self.step, {k: v for k, v in row.items() if k != "step"})

    def _maybe_write_grid(self) -> None:
        n = self.config.num_sample_grids
        if n and distributed.is_main() and self.config.objective != DENOISE and self.grids_written < n and self.progress() >= (self.grids_written + 1) / (n + 1):
            from difflab.run import write_class_grid

            self.grids_written += 1
            path = write_class_grid(self.ema.model, self.config, self.data.num_classes,
                                    self.run_dir / "samples" / f"step_{self.step:06d}.png",
                                    class_prompts=self.class_prompts)
            self.tracker.log_image("samples", self.step, path)

    def save(self) -> None:
        """The resumable snapshot (atomic, self-consistent), then the user-facing weights.

        Snapshot first: a write error in it leaves every file of the run as it was. Only rank 0 writes."""
        self.settle()  # exact skip counters in the snapshot (and a stop after too many bad steps)
        if not distributed.is_main():
            self.saved_step = self.step  # the others hold the same weights; they only need the step for messages
            return
        opt_tensors, opt_meta = ckpt.optimizer_tensors(self.optimizer)
        rng, rng_info = rngstate.capture(self.generator, self.order, self.draws)
        info = {"step": self.step, "position": self.position, "seen": self.seen, "elapsed": self.elapsed,
                "ema_updates": self.ema.updates, "grids_written": self.grids_written, "optimizer": opt_meta,
                "skipped_steps": self.skipped_steps, "rng": rng_info, "config": self.config.to_dict()}
        tensors = {"model": self.model.state_dict(), "ema": self.ema.model.state_dict(), "optimizer": opt_tensors, "rng": rng}
        ckpt.write_state(self.run_dir, tensors, info)
        self.saved_step = self.step
        ckpt.save_tensors(self.run_dir / "model.safetensors", self.model.state_dict())
        ckpt.save_tensors(self.run_dir / "ema.safetensors", self.ema.model.state_dict())

    def _restore(self) -> None:
        tensors, info = self._read_state()
        diff = config_diff(info.get("config", {}), self.config.to_dict())
        if diff:
            raise UserError(f"{self.run_dir / ckpt.STATE_DIR} was saved with another configuration "
                            f"({'; '.join(diff)}); fix: resume with the run's own config.json or start a new run")
        try:
            self.model.load_state_dict(tensors["model"])
            self.ema.model.load_state_dict(tensors["ema"])
            ckpt.load_optimizer(self.optimizer, tensors["optimizer"], info["optimizer"])
            ckpt.keep_fused(self.optimizer)  # a snapshot of an older (foreach) run would switch fused off
            self.step, self.position, self.seen = info["step"], info["position"], info["seen"]
            self.elapsed, self.ema.updates, self.grids_written = info["elapsed"], info["ema_updates"], info["grids_written"]
        except (KeyError, ValueError, RuntimeError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserError(f"{self.run_dir / ckpt.STATE_DIR} does not fit this run ({first}); fix: start a new run") from None
        self.skipped_steps, self.saved_step = info.get("skipped_steps", 0), self.step
        self._restore_rng(tensors, info)
        self._trim_metrics()

    def _read_state(self) -> tuple[dict, dict]:
        """Rank 0 repairs an interrupted write and reads; the other ranks then read the same snapshot, read-only."""
        if not distributed.is_main():
            distributed.barrier()
        state = ckpt.read_state(self.run_dir, recover=distributed.is_main())
        if distributed.is_main():
            distributed.barrier()
        return state

    def _restore_rng(self, tensors: dict, info: dict) -> None:
        """Exact resume needs every generator; without them, continue only when the user accepts it."""
        if rngstate.has_rng(tensors, info):
            self.set_order(rngstate.restore(self.generator, tensors["rng"], info["rng"], self.draws))
        elif not self.allow_rng_reset:
            raise UserError(f"{self.run_dir / ckpt.STATE_DIR} has no RNG state, so the resume would not be exact; "
                            "fix: --allow-rng-reset to continue with fresh random numbers")

    def _trim_metrics(self) -> None:
        """Drop metric lines written after the snapshot, so the trace has no duplicates."""
        path = self.run_dir / "metrics.jsonl"
        if path.exists() and distributed.is_main():
            kept = [r for r in path.read_text().splitlines() if _logged_step(r) <= self.step]
            ckpt.atomic_write_text(path, "".join(r + "\n" for r in kept))


def _logged_step(line: str) -> float:
    """The step of one metrics line; a line cut short by a crash counts as after any snapshot."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf

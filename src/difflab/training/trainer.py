"""The training loop: tensor-resident data, AdamW, warm-up + cosine LR, clipping, EMA, CFG dropout.

Writes a run folder as it goes (config.json, metrics.jsonl, samples/, model and EMA weights, and the
resumable `state/`). All randomness of the loop (data order, timesteps, noise, label dropout) comes
from one `torch.Generator` saved in the state, so a resumed run continues exactly.
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
from difflab.training import checkpoint as ckpt
from difflab.training.config import TrainConfig
from difflab.training.ema import EMA
from difflab.training.progress import Progress

MAX_BAD_STEPS = 20  # consecutive non-finite losses/gradients before training stops


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA GPU; fix: --device cpu")
    return torch.device(name)


def build_model(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int) -> UNet:
    channels, size, _ = image_shape
    return UNet(
        in_channels=channels, image_size=size, channels=config.channels, blocks_per_level=config.blocks_per_level,
        attention_levels=config.attention_levels, num_classes=num_classes if config.conditional else 0,
        dropout=config.dropout,
    )


class Trainer:
    """One run: `Trainer(config, run_dir).run()`; `resume=True` continues from `run_dir/state`."""

    def __init__(self, config: TrainConfig, run_dir: Path, *, resume: bool = False, show_progress: bool = True):
        self.config, self.run_dir, self.show_progress = config, Path(run_dir), show_progress
        self.device = resolve_device(config.device)
        self.data: ImageDataset = load_dataset(config.dataset, data_dir=config.data_dir, image_size=config.image_size)
        c, h, w = self.data.image_shape
        if h != w:
            raise UserError(f"{config.dataset}: images must be square, got {h}x{w}; fix: --image-size N")
        torch.manual_seed(config.seed)
        self.model = build_model(config, self.data.image_shape, self.data.num_classes).to(self.device)
        self.ema = EMA(self.model, config.ema_decay)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
        )
        self.alphas_cumprod = NoiseSchedule(config.schedule, config.num_timesteps).alphas_cumprod.to(self.device)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.images = self.data.images.to(self.device)  # (N, C, H, W), resident: batches are gathers
        self.labels = self.data.labels.to(self.device)
        self.order = torch.randperm(len(self.data), generator=self.generator)
        self.step, self.position, self.seen, self.elapsed, self.bad_steps = 0, 0, 0, 0.0, 0
        self.grids_written = 0
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
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.position + self.config.batch_size > len(self.order):
            self.order = torch.randperm(len(self.data), generator=self.generator)
            self.position = 0
        idx = self.order[self.position : self.position + self.config.batch_size].to(self.device)
        self.position += len(idx)
        self.seen += len(idx)
        return self.images[idx], self.labels[idx]

    def loss(self, x0: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c, g, b = self.config, self.generator, x0.shape[0]
        t = torch.randint(0, c.num_timesteps, (b,), generator=g).to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)  # (B, C, H, W)
        drop = (torch.rand(b, generator=g) < c.cond_dropout).to(self.device)
        cond = torch.where(drop, torch.full_like(labels, self.data.num_classes), labels) if c.conditional else None
        prediction = self.model(q_sample(x0, t, noise, self.alphas_cumprod), t, cond)
        return F.mse_loss(prediction, target(c.objective, x0, noise, t, self.alphas_cumprod))

    def train_step(self) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate()
        loss = self.loss(*self.next_batch())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
            self.bad_steps += 1  # skipped: a NaN/inf never reaches the weights
            if self.bad_steps >= MAX_BAD_STEPS:
                raise UserError(
                    f"{self.bad_steps} consecutive non-finite losses at step {self.step}; last good checkpoint: "
                    f"{self.run_dir / ckpt.STATE_DIR}; fix: lower --lr and --resume"
                )
            return float("nan")
        self.bad_steps = 0
        self.optimizer.step()
        self.ema.update(self.model)
        self.step += 1
        return loss.item()

    # --- the loop ------------------------------------------------------------------------------
    def run(self) -> Path:
        bar = Progress(self.config, enabled=self.show_progress)
        last_save, window_start, window_seen = time.monotonic(), time.monotonic(), self.seen
        started, elapsed0 = time.monotonic(), self.elapsed
        try:
            while self.progress() < 1.0:
                loss = self.train_step()
                self.elapsed = elapsed0 + time.monotonic() - started
                if self.step % self.config.log_every == 0:
                    ips = (self.seen - window_seen) / max(1e-9, time.monotonic() - window_start)
                    window_start, window_seen = time.monotonic(), self.seen
                    self._log(loss, ips)
                    bar.update(self, loss, ips)
                self._maybe_write_grid()
                if time.monotonic() - last_save > 60 * self.config.checkpoint_minutes:
                    self.save()
                    last_save = time.monotonic()
        except KeyboardInterrupt:
            self.save()
            bar.close()
            raise UserError(f"interrupted at step {self.step}; state saved: continue with difflab train --resume {self.run_dir}") from None
        bar.close()
        self.save()
        return self.run_dir

    # --- run folder ----------------------------------------------------------------------------
    def _start_folder(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if (self.run_dir / ckpt.STATE_DIR).exists():
            raise UserError(f"{self.run_dir} already holds a run; fix: --resume {self.run_dir} or another --out")
        for sub in ("samples", "plots"):
            (self.run_dir / sub).mkdir(exist_ok=True)
        self.config.save(self.run_dir / "config.json")
        (self.run_dir / "metrics.jsonl").write_text("")
        meta = {"class_names": list(self.data.class_names), "image_shape": list(self.data.image_shape),
                "model": self.model.config}
        ckpt.atomic_write_text(self.run_dir / "model.json", json.dumps(meta, indent=2))

    def _log(self, loss: float, images_per_s: float) -> None:
        row = {"step": self.step, "loss": round(loss, 6), "lr": self.learning_rate(),
               "images_per_s": round(images_per_s, 1), "elapsed": round(self.elapsed, 2), "epoch": round(self.seen / len(self.data), 3)}
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def _maybe_write_grid(self) -> None:
        n = self.config.num_sample_grids
        if n and self.grids_written < n and self.progress() >= (self.grids_written + 1) / (n + 1):
            from difflab.run import write_class_grid

            self.grids_written += 1
            write_class_grid(self.ema.model, self.config, self.data.num_classes,
                             self.run_dir / "samples" / f"step_{self.step:06d}.png")

    def save(self) -> None:
        """User-facing weights, then the resumable snapshot (atomic, self-consistent)."""
        ckpt.save_tensors(self.run_dir / "model.safetensors", self.model.state_dict())
        ckpt.save_tensors(self.run_dir / "ema.safetensors", self.ema.model.state_dict())
        opt_tensors, opt_meta = ckpt.optimizer_tensors(self.optimizer)
        rng = {"generator": self.generator.get_state(), "torch": torch.get_rng_state(), "order": self.order}
        info = {"step": self.step, "position": self.position, "seen": self.seen, "elapsed": self.elapsed,
                "ema_updates": self.ema.updates, "grids_written": self.grids_written, "optimizer": opt_meta,
                "config": self.config.to_dict()}
        tensors = {"model": self.model.state_dict(), "ema": self.ema.model.state_dict(), "optimizer": opt_tensors, "rng": rng}
        ckpt.write_state(self.run_dir, tensors, info)

    def _restore(self) -> None:
        tensors, info = ckpt.read_state(self.run_dir)
        self.model.load_state_dict(tensors["model"])
        self.ema.model.load_state_dict(tensors["ema"])
        ckpt.load_optimizer(self.optimizer, tensors["optimizer"], info["optimizer"])
        self.generator.set_state(tensors["rng"]["generator"])
        torch.set_rng_state(tensors["rng"]["torch"])
        self.order = tensors["rng"]["order"]
        self.step, self.position, self.seen = info["step"], info["position"], info["seen"]
        self.elapsed, self.ema.updates, self.grids_written = info["elapsed"], info["ema_updates"], info["grids_written"]
        self._trim_metrics()

    def _trim_metrics(self) -> None:
        """Drop metric lines written after the snapshot, so the trace has no duplicates."""
        path = self.run_dir / "metrics.jsonl"
        if path.exists():
            rows = [line for line in path.read_text().splitlines() if line.strip()]
            kept = [r for r in rows if json.loads(r)["step"] <= self.step]
            ckpt.atomic_write_text(path, "".join(r + "\n" for r in kept))

"""Seconds per epoch of the training loop on a 60,000-image 28x28 set (Fashion-MNIST), GPU variants.

    python benchmarks/gpu_epoch.py --data-dir /usr/share/datasets/fashion-mnist      # on a GPU machine
    python benchmarks/gpu_epoch.py --data-dir DIR --device cpu --steps 20 --only 0   # a smoke run on CPU

Each line: model, batch size, how non-finite steps are checked, precision/compile, seconds for one full
epoch (the second one, after warm-up and compilation), images/s, and the ratio to the first line of the
same model and batch (the per-step check, fp32, eager: the loop before deferred checks). Runs the real
`Trainer.train_step` (data gather, noise, CFG dropout, loss, fused AdamW, clipping, EMA) with the config
keys a user sets (`precision`, `compile`), so the figure is what `difflab train` does per epoch.

"per-step check" reads the loss's finiteness on the host every step, as before on every device: each read
makes the host wait for the GPU, so Python's launch work and the GPU's kernels never overlap. "deferred"
is what a GPU run does now: the device skips a bad step itself and the host reads every 25 steps.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from difflab.training.config import TrainConfig
from difflab.training.trainer import Trainer

MODELS = {"default 0.5M": (16, 32, 64), "2.0M": (32, 64, 128)}
VARIANTS = [  # (model, batch, check every step, precision, torch.compile)
    ("default 0.5M", 512, True, "fp32", False), ("default 0.5M", 512, False, "fp32", False),
    ("default 0.5M", 512, False, "bf16", False), ("default 0.5M", 512, False, "bf16", True),
    ("default 0.5M", 512, False, "fp32", True), ("default 0.5M", 1024, False, "fp32", False),
    ("default 0.5M", 64, True, "fp32", False), ("default 0.5M", 64, False, "fp32", False),
    ("2.0M", 512, True, "fp32", False), ("2.0M", 512, False, "fp32", False), ("2.0M", 512, False, "bf16", True),
]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def epoch_seconds(config: TrainConfig, *, check_every_step: bool, steps: int | None) -> float:
    trainer = Trainer(config, tempfile.mkdtemp(), show_progress=False, check_every_step=check_every_step)
    full = len(trainer.data) // config.batch_size
    run = min(full, steps or full)

    def one_epoch() -> float:
        synchronize(trainer.device)
        start = time.perf_counter()
        for i in range(run):
            loss = trainer.train_step()
            if (i + 1) % config.log_every == 0:
                float(loss)  # the loop's one host read per log line
                trainer.settle()
        synchronize(trainer.device)
        return (time.perf_counter() - start) * full / run

    one_epoch()  # warm-up: cuDNN autotune, compilation
    return one_epoch()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True, help="folder with the Fashion-MNIST IDX files")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, help="time only this many steps per epoch and scale (smoke runs)")
    parser.add_argument("--only", type=int, nargs="*", help="indices of VARIANTS to run")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{name}, torch {torch.__version__}", flush=True)
    reference: dict[tuple[str, int], float] = {}
    for i, (model, batch, each_step, precision, comp) in enumerate(VARIANTS):
        if args.only is not None and i not in args.only:
            continue
        config = TrainConfig(dataset="fashion-mnist", data_dir=args.data_dir, channels=MODELS[model],
                             batch_size=batch, epochs=100, device=args.device, num_sample_grids=0,
                             precision=precision, compile=comp)
        s = epoch_seconds(config, check_every_step=each_step, steps=args.steps)
        ratio = reference.setdefault((model, batch), s) / s
        checks = "per-step check" if each_step else "deferred"
        print(f"{model:13} batch {batch:4}  {checks:14}  {precision}{' + compile' if comp else '':10}  "
              f"{s:6.2f} s/epoch  {60000 / s:8.0f} img/s  {ratio:5.2f}x", flush=True)


if __name__ == "__main__":
    main()

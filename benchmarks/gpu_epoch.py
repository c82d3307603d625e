"""Seconds per epoch of the training loop on a 60,000-image 28x28 set (Fashion-MNIST), GPU variants.

    python benchmarks/gpu_epoch.py --data-dir DIR        # DIR holds the Fashion-MNIST IDX files

Each line: model, batch size, precision/compile variant, seconds for one full epoch (the second one,
after warm-up and compilation), images/s. Runs the real `Trainer.train_step` (data gather, noise,
CFG dropout, loss, AdamW, clipping, EMA), so the figure is what `difflab train` does per epoch.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from difflab.training.config import TrainConfig
from difflab.training.trainer import Trainer

MODELS = {"default 0.5M": (16, 32, 64), "2.0M": (32, 64, 128)}
VARIANTS = [  # (model, batch, bf16 autocast, torch.compile)
    ("default 0.5M", 64, False, False), ("default 0.5M", 512, False, False), ("default 0.5M", 512, True, False),
    ("default 0.5M", 512, True, True), ("2.0M", 512, False, False), ("2.0M", 512, True, False),
]


def epoch_seconds(config: TrainConfig, *, bf16: bool, compile_model: bool) -> float:
    trainer = Trainer(config, tempfile.mkdtemp(), show_progress=False)
    if compile_model:
        trainer.model = torch.compile(trainer.model)
    steps = len(trainer.data) // config.batch_size

    def one_epoch() -> float:
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
                trainer.train_step()
        torch.cuda.synchronize()
        return time.perf_counter() - start

    one_epoch()  # warm-up: cuDNN autotune, compilation
    return one_epoch()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", required=True)
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    print(f"{torch.cuda.get_device_name()} torch {torch.__version__}", flush=True)
    for name, batch, bf16, comp in VARIANTS:  # each takes two epochs; all together about two minutes
        config = TrainConfig(dataset="fashion-mnist", data_dir=args.data_dir, channels=MODELS[name],
                             batch_size=batch, epochs=100, device="cuda", num_sample_grids=0)
        s = epoch_seconds(config, bf16=bf16, compile_model=comp)
        variant = ("bf16" if bf16 else "fp32") + (" + compile" if comp else "")
        print(f"{name:13} batch {batch:4} {variant:15} {s:6.2f} s/epoch  {60000 / s:8.0f} img/s", flush=True)


if __name__ == "__main__":
    main()

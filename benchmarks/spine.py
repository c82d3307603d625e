"""Spine bars: training throughput against diffusers' UNet2DModel, peak RSS and quality of `difflab train`.

    python benchmarks/spine.py              # throughput table, then the default main job (about 4 minutes)
    python benchmarks/spine.py --skip-train # throughput table only

Throughput is one AdamW step at batch 128 on 28x28x1 (and one forward at batch 256), both models
measured in the same process, interleaved, median of repeats, with the same thread count.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from difflab.nn.spec import build
from difflab.run import RunFolder
from difflab.training.config import TrainConfig
from peers import DiffusersCourseUNet  # benchmarks/peers.py (python puts the script's folder on sys.path)


def ours() -> torch.nn.Module:
    return build(TrainConfig().model_spec((1, 28, 28), 10))  # the network `difflab train` builds for MNIST


def step_seconds(model: torch.nn.Module, batch: int) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, foreach=True)
    x, t, c = torch.randn(batch, 1, 28, 28), torch.randint(0, 1000, (batch,)), torch.randint(0, 11, (batch,))
    start = time.perf_counter()
    loss = (model(x, t, c) - x).pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - start


@torch.no_grad()
def forward_seconds(model: torch.nn.Module, batch: int) -> float:
    x, t, c = torch.randn(batch, 1, 28, 28), torch.randint(0, 1000, (batch,)), torch.randint(0, 11, (batch,))
    start = time.perf_counter()
    model(x, t, c)
    return time.perf_counter() - start


def throughput(repeats: int = 7) -> None:
    models = {"difflab UNet (default)": ours(), "diffusers UNet2DModel (course config)": DiffusersCourseUNet()}
    train = {k: [] for k in models}
    fwd = {k: [] for k in models}
    for m in models.values():  # warm-up
        step_seconds(m, 128), forward_seconds(m.eval(), 256), m.train()
    for _ in range(repeats):
        for name, m in models.items():
            train[name].append(128 / step_seconds(m.train(), 128))
            fwd[name].append(256 / forward_seconds(m.eval(), 256))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'model':40} {'params':>8} {'train img/s':>12} {'forward img/s':>14}")
    for name, m in models.items():
        params = sum(p.numel() for p in m.parameters()) / 1e6
        print(f"{name:40} {params:7.2f}M {statistics.median(train[name]):12.1f} {statistics.median(fwd[name]):14.1f}")
    a, b = models
    print(f"ratio (difflab / diffusers): train {statistics.median(train[a]) / statistics.median(train[b]):.2f}x, "
          f"forward {statistics.median(fwd[a]) / statistics.median(fwd[b]):.2f}x")


def vm_hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main_job() -> None:
    out = Path(tempfile.mkdtemp()) / "run"
    start = time.time()
    child = subprocess.Popen([sys.executable, "-m", "difflab", "train", "--out", str(out), "--no-progress"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_mb = 0.0
    while child.poll() is None:  # VmHWM is the child's own high-water mark (ru_maxrss counts the fork)
        peak_mb = max(peak_mb, vm_hwm_mb(child.pid))
        time.sleep(0.2)
    seconds = time.time() - start
    if child.returncode:
        sys.exit(child.stderr.read())
    final = RunFolder(out).read_eval("final")
    print(f"difflab train (defaults): {seconds:.0f} s wall, peak RSS {peak_mb:.0f} MB, "
          f"judge accuracy of {final['n']} samples {100 * final['accuracy']:.1f}% "
          f"({final['solver']}, {final['steps']} steps, guidance {final['guidance']}), "
          f"judge on real digits {100 * final['judge_real_accuracy']:.1f}%")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    throughput()
    if not args.skip_train:
        main_job()

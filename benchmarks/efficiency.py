"""Efficiency against the hardware: what fraction of the CPU's fp32 matmul rate a training step uses.

    python benchmarks/efficiency.py                          # full run (~5 min quiet, compile included)
    python benchmarks/efficiency.py --repeats 2 --steps 2 --no-compile    # smoke test

1. FLOPs of one training step (forward + MSE loss + backward, counted by
   torch.utils.flop_counter.FlopCounterMode; the optimizer's few FLOPs are not counted) x measured
   steps/s, against the fp32 rate of a large `torch.mm` (2048^2, median of repeats) in the same run:
   the fraction of the machine the step uses. Default difflab U-Net at batch 64 and 128, and the
   diffusers course UNet2DModel (benchmarks/peers.py) for comparison; the Trainer's whole step
   (q_sample, CFG dropout, clipping, EMA, loss read) is timed too, to show the loop's own overhead.
2. torch.profiler: the ops with the most self CPU time in training steps, as % of step time, and the
   same grouped by layer kind (convolution, group norm, SiLU, element-wise, optimizer, ...).
3. Levers, each as steps/s and its ratio to the baseline (batch 64, 2 threads, contiguous, AdamW
   foreach, eager, fp32 matmul precision "highest"), measured interleaved in the same run; the
   Trainer's gradient clipping and EMA update are priced the same way, as costs.
4. Process settings (OpenMP threads and wait policy), each in fresh child processes.
A step is one bare AdamW step on random 28x28 inputs unless said otherwise; rates are medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.profiler import record_function
from torch.utils.flop_counter import FlopCounterMode

from difflab.nn.spec import build
from difflab.training.config import TrainConfig

Step = Callable[[], None]


def default_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build(TrainConfig().model_spec((1, 28, 28), 10))  # difflab's default U-Net for MNIST


def course_model() -> torch.nn.Module:
    from peers import DiffusersCourseUNet

    torch.manual_seed(0)
    return DiffusersCourseUNet()


def inputs(batch: int, channels_last: bool = False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 1, 28, 28, generator=g)
    x = x.to(memory_format=torch.channels_last) if channels_last else x
    return x, torch.randint(0, 1000, (batch,), generator=g), torch.randint(0, 11, (batch,), generator=g)


def make_step(model: torch.nn.Module, batch: int, *, fused: bool = False, channels_last: bool = False,
              clip: bool = False, ema: bool = False, bf16: bool = False) -> Step:
    """One bare training step: forward, MSE, backward, AdamW (foreach, or fused); optionally the
    Trainer's gradient clipping (norm 1.0) and EMA update, to price them."""
    from difflab.training.ema import EMA

    model.train()
    averaged = EMA(model) if ema else None
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if fused else {"foreach": True}))
    x, t, c = inputs(batch, channels_last)

    def step() -> None:  # the labelled ranges give the phase split in the profile (negligible cost otherwise)
        with record_function("phase: forward + loss"), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = F.mse_loss(model(x, t, c).float(), x)
        with record_function("phase: backward"):
            opt.zero_grad(set_to_none=True)
            loss.backward()
        if clip:
            with record_function("phase: clip_grad_norm_"):
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        with record_function("phase: optimizer (AdamW)"):
            opt.step()
        if averaged is not None:
            with record_function("phase: EMA update"):
                averaged.update(model)

    return step


def step_flops(model: torch.nn.Module, batch: int) -> int:
    x, t, c = inputs(batch)
    with FlopCounterMode(display=False) as counter:
        F.mse_loss(model(x, t, c), x).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def matmul_rate(n: int = 2048, repeats: int = 7) -> float:
    """fp32 FLOP/s of an n x n `torch.mm` (2 n^3 FLOPs), median of repeats."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def rate(step: Step, steps: int) -> float:
    """Steps/s over `steps` consecutive steps."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def interleaved(variants: dict[str, dict], repeats: int, steps: int) -> dict[str, list[float]]:
    """Steps/s of each burst of each variant (take the median), round-robin so contention hits all alike.

    A variant is {"step": Step, "threads": int, "precision": str}; globals are set before each burst."""
    rates = {k: [] for k in variants}
    for v in variants.values():  # warm-up (one-off allocations, oneDNN primitive caches)
        configure(v), v["step"](), v["step"]()
    for _ in range(repeats):
        for name, v in variants.items():
            configure(v)
            rates[name].append(rate(v["step"], steps))
    configure({})
    return rates


def configure(variant: dict) -> None:
    torch.set_num_threads(variant.get("threads", BASE_THREADS))
    torch.set_float32_matmul_precision(variant.get("precision", "highest"))


BASE_THREADS = torch.get_num_threads()


def trainer_step(tmp: str) -> Step:
    """difflab's own Trainer.train_step (default recipe: data gather, q_sample, CFG dropout, clip, EMA, loss read)."""
    from difflab.training.trainer import Trainer

    torch.manual_seed(0)
    trainer = Trainer(TrainConfig(minutes=60, num_sample_grids=0, checkpoint_minutes=1e6), f"{tmp}/run", show_progress=False)
    return trainer.train_step


def fraction_table(mm: float, repeats: int, steps: int, tmp: str) -> float:
    """Prints FLOPs x steps/s against the matmul rate; returns the default model's steps/s at batch 64."""
    rows = [("difflab UNet (default)", default_model, 64), ("difflab UNet (default)", default_model, 128),
            ("diffusers UNet2DModel (course)", course_model, 64)]
    flops = [step_flops(make(), b) for _, make, b in rows]
    variants = {i: {"step": make_step(make(), b)} for i, (_, make, b) in enumerate(rows)}
    variants["trainer"] = {"step": trainer_step(tmp)}
    rates = {k: statistics.median(r) for k, r in interleaved(variants, repeats, steps).items()}
    print(f"\nfp32 matmul (2048^2 torch.mm, median of 7): {mm / 1e9:.1f} GFLOP/s, {BASE_THREADS} threads")
    print("| model | batch | GFLOP/step (fwd+bwd) | steps/s | img/s | GFLOP/s | % of matmul rate |")
    print("|---|---|---|---|---|---|---|")
    for i, (name, _, batch) in enumerate(rows):
        achieved = flops[i] * rates[i]
        print(f"| {name} | {batch} | {flops[i] / 1e9:.3f} | {rates[i]:.2f} | {rates[i] * batch:.0f} | "
              f"{achieved / 1e9:.1f} | {100 * achieved / mm:.1f}% |")
    t = rates["trainer"]
    print(f"| difflab Trainer.train_step (whole default step) | 64 | {flops[0] / 1e9:.3f} | {t:.2f} | {t * 64:.0f} | "
          f"{flops[0] * t / 1e9:.1f} | {100 * flops[0] * t / mm:.1f}% |")
    print(f"Trainer step / bare step: {t / rates[0]:.2f}x the rate (the loop's own overhead)")
    return rates[0]


GROUPS = [("convolution", ("conv",)), ("group norm", ("group_norm",)), ("SiLU", ("silu",)),
          ("linear / matmul", ("addmm", "::mm", "bmm", "matmul", "linear")),
          ("optimizer bookkeeping", ("foreach", "adam", "optimizer")),
          ("element-wise / copies", ("add", "mul", "sub", "div", "copy", "fill", "zero", "clone", "cat", "pow",
                                     "mse", "sum", "mean", "exp", "sin", "cos", "where", "neg", "upsample", "pad"))]


def profile_table(step: Step, steps: int, top: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    step()
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    per_step = (time.perf_counter() - start) / steps
    averages = prof.key_averages()
    phases = [e for e in averages if e.key.startswith("phase: ")]
    events = sorted((e for e in averages if not e.key.startswith("phase: ")), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in events)  # us, over all steps
    print(f"\nprofile: default UNet, batch 64, bare step + clipping + EMA (as the Trainer), {steps} steps, "
          f"{1e3 * per_step:.1f} ms/step under the profiler")
    print("| op | calls/step | self CPU ms/step | % of step |")
    print("|---|---|---|---|")
    for e in events[:top]:
        ms, share = e.self_cpu_time_total / 1e3 / steps, 100 * e.self_cpu_time_total / total
        print(f"| {e.key} | {e.count / steps:.0f} | {ms:.2f} | {share:.1f}% |")
    print("| phase (inclusive) | ms/step | % of step |\n|---|---|---|")
    for e in phases:
        print(f"| {e.key[7:]} | {e.cpu_time_total / 1e3 / steps:.2f} | {100 * e.cpu_time_total / total:.1f}% |")
    print("(the optimizer's per-tensor ops — aten::mul/add_/sqrt/copy_ from foreach fallbacks — count in its phase)")
    groups = {name: 0.0 for name, _ in GROUPS} | {"other": 0.0}
    for e in events:
        name = next((g for g, keys in GROUPS if any(k in e.key.lower() for k in keys)), "other")
        groups[name] += e.self_cpu_time_total
    print("| layer kind | % of step |\n|---|---|")
    for name, us in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"| {name} | {100 * us / total:.1f}% |")


def compiled_step(batch: int) -> tuple[Step | None, str]:
    """torch.compile (inductor) of the default model; returns (step, note with the compile time)."""
    try:
        import torch._inductor.config

        torch._inductor.config.compile_threads = 1  # no worker pool left running to disturb the timings
        model = torch.compile(default_model())
        step = make_step(model, batch)
        start = time.perf_counter()
        step(), step()  # compiles forward and backward (and recompiles nothing after)
        return step, f"compile + 2 steps: {time.perf_counter() - start:.0f} s"
    except Exception as err:  # inductor needs a C++ compiler; a failure is a finding, not a crash
        return None, f"torch.compile failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"


def levers(repeats: int, steps: int, use_compile: bool) -> None:
    """Each lever alone against the baseline, interleaved; img/s ratio (batch 128 differs in batch)."""
    variants = {
        "baseline (batch 64, foreach AdamW, contiguous, eager)": {"step": make_step(default_model(), 64)},
        "channels_last": {"step": make_step(default_model(), 64, channels_last=True)},
        "AdamW fused=True": {"step": make_step(default_model(), 64, fused=True)},
        "bf16 autocast (`--precision bf16`)": {"step": make_step(default_model(), 64, bf16=True)},
        "1 thread": {"step": make_step(default_model(), 64), "threads": 1},
        "batch 128": {"step": make_step(default_model(), 128), "batch": 128},
        "+ clip_grad_norm_ (as the Trainer)": {"step": make_step(default_model(), 64, clip=True)},
        "+ clip_grad_norm_ + EMA (as the Trainer)": {"step": make_step(default_model(), 64, clip=True, ema=True)},
        "fp32 matmul precision 'high'": {"step": make_step(default_model(), 64), "precision": "high"},
        "fp32 matmul precision 'medium'": {"step": make_step(default_model(), 64), "precision": "medium"},
    }
    note = "skipped (--no-compile)"
    if use_compile:
        step, note = compiled_step(64)
        if step is not None:
            variants["torch.compile (inductor)"] = {"step": step}
    bursts = interleaved(variants, repeats, steps)
    rates = {k: statistics.median(r) for k, r in bursts.items()}
    base = rates[next(iter(variants))] * 64
    print(f"\nlevers: default UNet, {BASE_THREADS} threads unless said, median of {repeats} x {steps} steps, interleaved")
    print("| lever | steps/s | img/s | img/s vs baseline | verdict | burst range img/s |\n|---|---|---|---|---|---|")
    for name, v in variants.items():
        ips = rates[name] * v.get("batch", 64)
        verdict = "pays" if ips >= 1.05 * base else ("loses" if ips <= 0.95 * base else "within 5%")
        verdict = f"a cost, not a lever: {ips / base - 1:+.0%} img/s" if name.startswith("+") else verdict
        lo, hi = (min(bursts[name]) * v.get("batch", 64), max(bursts[name]) * v.get("batch", 64))
        print(f"| {name} | {rates[name]:.2f} | {ips:.0f} | {ips / base:.2f}x | {verdict} | {lo:.0f}-{hi:.0f} |")
    print(f"torch.compile: {note}")


ENVIRONMENTS = {"default (2 OpenMP threads, spin-waiting)": {}, "OMP_NUM_THREADS=1": {"OMP_NUM_THREADS": "1"},
                "OMP_WAIT_POLICY=PASSIVE (2 threads)": {"OMP_WAIT_POLICY": "PASSIVE"}}


def environment_levers(repeats: int, steps: int) -> None:
    """OpenMP settings take effect only at process start: each burst is a fresh child process
    (img/s over `steps` bare steps after 2 warm-up steps), round-robin over the settings."""
    import os
    import subprocess

    rates = {k: [] for k in ENVIRONMENTS}
    for _ in range(repeats):
        for name, env in ENVIRONMENTS.items():
            out = subprocess.run([sys.executable, __file__, "--child-rate", str(steps)], env={**os.environ, **env},
                                 capture_output=True, text=True, check=True).stdout
            rates[name].append(float(out.split()[-1]))
    base = statistics.median(rates[next(iter(ENVIRONMENTS))])
    print(f"\nprocess settings: default UNet, batch 64, median of {repeats} child processes x {steps} steps")
    print("| setting | img/s | vs default | burst range img/s |\n|---|---|---|---|")
    for name, r in rates.items():
        print(f"| {name} | {statistics.median(r):.0f} | {statistics.median(r) / base:.2f}x | {min(r):.0f}-{max(r):.0f} |")


def child_rate(steps: int) -> None:
    step = make_step(default_model(), 64)
    step(), step()
    print(f"img/s {64 * rate(step, steps):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7, help="interleaved bursts per variant (median taken)")
    parser.add_argument("--steps", type=int, default=5, help="training steps per burst")
    parser.add_argument("--profile-steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=15, help="ops listed in the profile table")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out (it takes minutes)")
    parser.add_argument("--child-rate", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rate:
        return child_rate(args.child_rate)
    import tempfile

    print(f"python {' '.join(sys.argv)}\ntorch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, {BASE_THREADS} threads")
    with tempfile.TemporaryDirectory() as tmp:
        fraction_table(matmul_rate(), args.repeats, args.steps, tmp)
    profile_table(make_step(default_model(), 64, clip=True, ema=True), args.profile_steps, args.top)
    levers(args.repeats, args.steps, not args.no_compile)
    environment_levers(max(3, args.repeats // 2), 3 * args.steps)


if __name__ == "__main__":
    main()

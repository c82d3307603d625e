"""Quality against the number of network evaluations (NFE) for every solver, on a trained run.

    python benchmarks/sampling.py RUN [--n 1000] [--guidance 3] [--skip ddpm:1000,ddim:100]

For each solver/step count: judge accuracy of n class-conditional samples, Fréchet distance of judge
features against the real held-out split, images/s end to end (sampling only: noise to images). With
CFG each step is one batched forward of 2B images, so NFE = steps (counting the batched pair once).
`unipc` is diffusers' UniPCMultistepScheduler (bh2, order 2, x0-predicting) stepping on difflab's
guided noise estimate, with the run's own betas (`trained_betas`) and trailing timesteps; the other
rows are difflab's solvers (which clip x0 to [-1, 1]; diffusers' UniPC does not). The last line names
the fewest-NFE row within 5% of the reference (ddpm 1000, else the row with the most NFE measured):
accuracy >= 0.95 x the reference's and FD <= 1.05 x the reference's.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from difflab.data import load_dataset
from difflab.diffusion import NoiseSchedule
from difflab.evaluation import judge_samples, load_judge
from difflab.evaluation.metrics import frechet_distance
from difflab.run import Run
from difflab.sampling import class_labels

GRID = [("ddpm", 1000), ("ddim", 100), ("ddim", 50), ("ddim", 20), ("ddim", 10),
        ("dpm++", 20), ("dpm++", 10), ("dpm++", 8), ("dpm++", 6), ("dpm++", 5), ("dpm++", 4), ("dpm++", 3),
        ("unipc", 10), ("unipc", 5)]


@torch.no_grad()
def unipc_sample(run: Run, labels: torch.Tensor, steps: int, guidance: float, *, seed: int = 0,
                 batch_size: int = 500) -> torch.Tensor:
    """diffusers' UniPC on our guided ε̂ (the run's `Sampler` builds it), chunked and seeded like `Run.sample`
    (same start noise)."""
    from diffusers import UniPCMultistepScheduler

    c, model = run.config, run.model
    device = next(model.parameters()).device
    scheduler = UniPCMultistepScheduler(
        num_train_timesteps=c.num_timesteps, trained_betas=NoiseSchedule(c.schedule, c.num_timesteps).betas.numpy(),
        prediction_type="epsilon", timestep_spacing="trailing")  # ε̂ = our v converted: the same update as v_prediction
    sampler = run.sampler(guidance=guidance, precision="fp32", seed=seed)
    shape = run.spec.image_shape  # (C, H, W)
    generator, chunks = sampler.generator(), []
    for cond in labels.split(batch_size):
        x = torch.randn((len(cond), *shape), generator=generator).to(device)  # (B, C, H, W)
        eps_fn = sampler.noise_estimate(model, run.alphas_cumprod, run.condition(labels=cond),
                                        guide=run.guide if sampler.needs_guide else None)
        scheduler.set_timesteps(steps, device=device)  # also resets the multistep history
        for t in scheduler.timesteps:
            x = scheduler.step(eps_fn(x, torch.full((len(cond),), int(t), device=device)), t, x).prev_sample
        chunks.append(x.cpu())
    return torch.cat(chunks)


def sample(run: Run, solver: str, steps: int, labels: torch.Tensor, guidance: float, precision: str = "fp32") -> torch.Tensor:
    if solver == "unipc":
        return unipc_sample(run, labels, steps, guidance)
    return run.sample(labels, solver=solver, steps=steps, guidance=guidance, precision=precision)


def fewest_within(rows: list[tuple[str, int, float, float, float]], tolerance: float = 0.05) -> str:
    ref = next((r for r in rows if r[:2] == ("ddpm", 1000)), None) or max(rows, key=lambda r: r[1])
    ok = [r for r in rows if r[2] >= (1 - tolerance) * ref[2] and r[3] <= (1 + tolerance) * ref[3]]
    best = min(ok, key=lambda r: (r[1], -r[2]))
    return (f"fewest NFE within {tolerance:.0%} of {ref[0]} {ref[1]} ({100 * ref[2]:.1f}%, FD {ref[3]:.2f}): "
            f"{best[0]} {best[1]} ({100 * best[2]:.1f}%, FD {best[3]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--skip", default="", help="rows to leave out, e.g. ddpm:1000,ddim:100 (ddpm 1000 takes ~20 min on 2 cores)")
    parser.add_argument("--only", default="", help="rows to run, e.g. dpm++:6,ddim:10 (default: all but --skip)")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=("fp32", "bf16"),
                        help="network precision(s); each row runs once per precision (unipc: fp32 only)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    skip = {tuple(s.split(":")) for s in args.skip.split(",") if s}
    only = {tuple(s.split(":")) for s in args.only.split(",") if s}
    grid = [(solver, steps) for solver, steps in GRID if (solver, str(steps)) not in skip
            and (not only or (solver, str(steps)) in only)]
    run = Run.load(args.run, device=args.device)
    judge = load_judge(run.config.dataset, verbose=False)
    real = judge.features(load_dataset(run.config.dataset, split="test").images)
    labels = class_labels(run.num_classes, args.n // run.num_classes)
    print(f"python {' '.join(sys.argv)}\ntorch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads")
    print(f"{'solver':8} {'NFE':>5} {'judge acc':>9} {'FD':>8} {'img/s':>8}   (guidance {args.guidance}, n={len(labels)})")
    rows = []
    for solver, steps in grid:
        for precision in args.precision if solver != "unipc" else ["fp32"]:
            start = time.perf_counter()
            images = sample(run, solver, steps, labels, args.guidance, precision)
            seconds = time.perf_counter() - start
            acc = judge_samples(judge, images, labels)["accuracy"]
            fd = frechet_distance(judge.features(images), real)
            rows.append((solver, steps, acc, fd, len(labels) / seconds))
            tag = "" if args.precision == ["fp32"] else f"  {precision}"
            print(f"{solver:8} {steps:5} {100 * acc:8.1f}% {fd:8.2f} {len(labels) / seconds:8.0f}{tag}", flush=True)
    print(fewest_within(rows))


if __name__ == "__main__":
    main()

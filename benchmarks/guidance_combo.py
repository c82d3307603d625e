"""Autoguidance and interval CFG together: a candidate for the next default sampler (issue 16).

    python benchmarks/guidance_combo.py RUN "[[w_auto, w_cfg, lo, hi], ...]"

ε̂ = ε_g + w_auto (ε_c − ε_g) + (w_cfg − 1)(ε_c − ε_u) where t/T lies in [lo, hi], ε_g being the run's guide
network (guide.safetensors) under the same class and ε_u the null branch; w_auto = 1 drops autoguidance,
w_cfg = 1 drops CFG. 1,000 samples (100 per class, seed 0, DPM-Solver++ at the run's steps), measured
by `QualityProbe` like benchmarks/quality.py. `Sampler(guidance=w_cfg, guidance_interval=(lo, hi),
autoguidance=w_auto)` (`--autoguidance`) samples the same way; this script was the evidence for adding it.
"""

from __future__ import annotations

import json
import sys

import torch

from difflab.evaluation.quality import QualityProbe
from difflab.run import Run
from difflab.sampling import class_labels


def main() -> None:
    run, combos = Run.load(sys.argv[1]), json.loads(sys.argv[2])
    if run.guide is None:
        sys.exit(f"{run.path} has no guide.safetensors; train it with this difflab")
    probe = QualityProbe(run.config.dataset, data_dir=run.config.data_dir, image_size=run.config.image_size)
    labels = class_labels(run.num_classes, 1000 // run.num_classes)
    null = torch.full_like(labels, run.num_classes)
    sampler = run.sampler(seed=0)
    main_net = sampler.model_estimate(run.model, run.alphas_cumprod)
    guide_net = sampler.model_estimate(run.guide, run.alphas_cumprod)
    last = len(run.alphas_cumprod) - 1
    print("| w_auto | w_cfg | interval | accuracy | FD / floor | recall |\n|---|---|---|---|---|---|")
    for w_auto, w_cfg, lo, hi in combos:
        def estimate(x, t, w_auto=w_auto, w_cfg=w_cfg, lo=lo, hi=hi):
            strong = main_net(x, t, labels)
            if w_auto == 1:
                out = strong
            else:
                weak = guide_net(x, t, labels)
                out = weak + w_auto * (strong - weak)
            if w_cfg != 1 and lo <= int(t[0]) / last <= hi:
                out = out + (w_cfg - 1) * (strong - main_net(x, t, null))
            return out

        x = torch.randn((len(labels), *run.spec.image_shape), generator=sampler.generator())
        with torch.no_grad():
            images = sampler.run(estimate, x, run.alphas_cumprod)
        r = probe.measure(images, labels)
        print(f"| {w_auto:g} | {w_cfg:g} | [{lo:g}, {hi:g}] | {r['accuracy']:.3f} | {r['fd_ratio']:.2f} | {r['recall']:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()

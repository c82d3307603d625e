"""Autoguidance and interval CFG together: a candidate for the next default sampler (issue 16).

    python benchmarks/guidance_combo.py RUN "[[w_auto, w_cfg, lo, hi], ...]"

Each row samples with `Run.sample(guidance=w_cfg, guidance_interval=(lo, hi), autoguidance=w_auto)`:
ε̂ = ε_c + (w_cfg − 1)(ε_c − ε_u) where t/T lies in [lo, hi], + (w_auto − 1)(ε_c − ε_g) on every step, ε_g
the run's guide network (guide.safetensors) under the same class, ε_u the null branch. 1,000 samples
(100 per class, seed 0, the run's solver and steps), measured by `QualityProbe` like benchmarks/quality.py.
"""

from __future__ import annotations

import json
import sys

from difflab.evaluation.quality import QualityProbe
from difflab.evaluation.suite import sample_shown
from difflab.run import Run
from difflab.sampling import class_labels


def main() -> None:
    run, combos = Run.load(sys.argv[1]), json.loads(sys.argv[2])
    if run.guide is None:
        sys.exit(f"{run.path} has no guide.safetensors; train it with this difflab")
    probe = QualityProbe(run.config.dataset, data_dir=run.config.data_dir, image_size=run.config.image_size)
    labels = class_labels(run.num_classes, 1000 // run.num_classes)
    print("| w_auto | w_cfg | interval | accuracy | FD / floor | recall |\n|---|---|---|---|---|---|")
    for w_auto, w_cfg, lo, hi in combos:
        images = sample_shown(run, labels, n=None, seed=0, enabled=False, guidance_method="cfg", guidance=w_cfg,
                              guidance_interval=(lo, hi), guidance_rescale=0.0, autoguidance=w_auto)
        r = probe.measure(images, labels)
        print(f"| {w_auto:g} | {w_cfg:g} | [{lo:g}, {hi:g}] | {r['accuracy']:.3f} | {r['fd_ratio']:.2f} | {r['recall']:.3f} |",
              flush=True)


if __name__ == "__main__":
    main()

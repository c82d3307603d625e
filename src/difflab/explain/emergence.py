"""When does the digit appear? The judge's belief in the final class, read from x̂₀ at every step.

At each solver step the sampler predicts a clean image x̂₀; the judge classifier gives
p(final class | x̂₀), where the final class is the judge's verdict on the finished image. The digit
"appears" at the first step where the mean of that probability reaches a threshold (0.5 and 0.9),
reported as a fraction of the steps (step i of S counts as (i + 1) / S).
"""

from __future__ import annotations

import numpy as np
import torch

from difflab import progress
from difflab.errors import UserError
from difflab.sampling import class_labels

THRESHOLDS = (0.5, 0.9)


def appears_at(curve: np.ndarray, threshold: float) -> float | None:
    """Fraction of the steps done when `curve` first reaches `threshold` (None: never)."""
    hits = np.flatnonzero(np.asarray(curve) >= threshold)
    return float((hits[0] + 1) / len(curve)) if len(hits) else None


def emergence(run, judge, *, n: int = 200, seed: int = 0, settings: dict | None = None) -> dict:
    """Sample `n` images (classes in turn), judge x̂₀ after every step; curves and appearance points."""
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    labels = class_labels(run.num_classes, -(-n // run.num_classes))[:n] if run.num_classes else None
    x0s: list[torch.Tensor] = []  # per step, (N, C, H, W) across chunks
    ts: list[int] = []

    def on_step(start, step):
        if start == 0:
            x0s.append(step.x0.cpu())
            ts.append(step.t)
        else:
            x0s[step.index] = torch.cat([x0s[step.index], step.x0.cpu()])

    with progress.stage(f"explain: sampling {n} images, x̂₀ kept at every step"):
        final = run.sample(labels, n=None if labels is not None else n, seed=seed, callback=on_step, **(settings or {}))
    final_class = judge.probabilities(final).argmax(1)  # (N,)
    probs = torch.stack([judge.probabilities(x)[torch.arange(len(final)), final_class] for x in x0s])  # (S, N)
    classes = sorted(set(final_class.tolist()))
    per_class = {int(c): probs[:, final_class == c].mean(1).tolist() for c in classes}
    curve = probs.mean(1).numpy()  # (S,)
    return dict(timesteps=ts, step_fraction=[(i + 1) / len(ts) for i in range(len(ts))], mean=curve.tolist(),
                per_class=per_class, n=len(final), final_class_counts={int(c): int((final_class == c).sum()) for c in classes},
                label_agreement=float((final_class == labels).float().mean()) if labels is not None else None,
                appears={str(th): appears_at(curve, th) for th in THRESHOLDS})

"""Matplotlib figures for a run (headless: the Agg backend, chosen before pyplot is imported)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from difflab.run import files


def plot_loss(metrics: list[dict], out: Path) -> Path | None:
    """Training loss (raw and smoothed) and learning rate against step, from metric rows (`RunFolder.read_metrics`)."""
    rows = [r for r in metrics if isinstance(r.get("loss"), (int, float)) and r["loss"] == r["loss"]]  # drop NaN rows
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    loss = [r["loss"] for r in rows]
    window = max(1, len(loss) // 15)  # trailing mean over ~7% of the run
    csum = np.cumsum([0.0, *loss])
    smooth = [(csum[i + 1] - csum[max(0, i + 1 - window)]) / min(window, i + 1) for i in range(len(loss))]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, loss, color="tab:blue", alpha=0.3, label="loss")
    ax.plot(steps, smooth, color="tab:blue", label=f"loss (mean of {window} points)")
    ax.set(xlabel="step", ylabel="MSE loss", title="Training loss", yscale="log")
    ax.grid(alpha=0.3)
    lr_ax = ax.twinx()
    lr_ax.plot(steps, [r["lr"] for r in rows], color="tab:orange", label="learning rate")
    lr_ax.set_ylabel("learning rate", color="tab:orange")
    lines = ax.get_legend_handles_labels()[0] + lr_ax.get_legend_handles_labels()[0]
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    files.atomic_save(out, lambda buffer: fig.savefig(buffer, format=files.suffix_format(out)))
    plt.close(fig)
    return Path(out)

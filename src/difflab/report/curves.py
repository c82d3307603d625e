"""Report figures drawn in memory (PNG bytes): training speed, and accuracy–coverage from a JSON."""

from __future__ import annotations

import io

import numpy as np

from difflab.report.plots import plt  # the Agg backend, chosen there before pyplot is imported


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def seconds_per_epoch(rows: list[dict]) -> list[float]:
    """Wall time of each whole epoch, from `elapsed` interpolated at integer epochs of metrics.jsonl."""
    epochs = np.array([0.0] + [r["epoch"] for r in rows if "epoch" in r and "elapsed" in r])
    elapsed = np.array([0.0] + [r["elapsed"] for r in rows if "epoch" in r and "elapsed" in r])
    whole = np.arange(0, int(epochs.max()) + 1) if len(epochs) > 1 else np.arange(0)
    if len(whole) < 2:
        return []
    at = np.interp(whole, epochs, elapsed)  # elapsed seconds when epoch k was complete
    return [float(s) for s in np.diff(at)]


def speed_figure(rows: list[dict]) -> bytes | None:
    """Images/s over steps and seconds per epoch, sized to sit beside plots/loss.png (None without metrics)."""
    rows = [r for r in rows if "step" in r]
    if not rows:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(7, 4), dpi=110)
    axes[0].plot([r["step"] for r in rows], [r.get("images_per_s", np.nan) for r in rows], color="tab:green")
    axes[0].set(title="Throughput (images/s)", xlabel="step", ylim=(0, None))
    per_epoch = seconds_per_epoch(rows)
    if per_epoch:
        axes[1].bar(range(1, len(per_epoch) + 1), per_epoch, color="tab:purple")
        axes[1].set(title="Seconds per epoch", xlabel="epoch")
    else:
        axes[1].text(0.5, 0.5, "less than one\nepoch trained", ha="center", va="center")
        axes[1].set(title="Seconds per epoch", xticks=[], yticks=[])
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def coverage_curves(data, name: str = "") -> list[tuple[str, list, list]]:
    """Every (name, coverage, accuracy) pair of equal-length number lists found in a JSON document."""
    if not isinstance(data, dict):
        return []
    found = []
    cov, acc = data.get("coverage"), data.get("accuracy")
    if _numbers(cov) and _numbers(acc) and len(cov) == len(acc) > 1:
        found.append((name or "accuracy–coverage", cov, acc))
    for key, value in data.items():
        found += coverage_curves(value, f"{name} {key}".strip())
    return found


def coverage_figure(title: str, coverage: list, accuracy: list) -> bytes:
    """Accuracy of the images the judge keeps against the fraction kept (selective prediction)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.4), dpi=100)
    ax.plot(coverage, accuracy, marker=".", color="tab:blue")
    ax.set(title=title, xlabel="coverage (fraction kept)", ylabel="accuracy", xlim=(0, 1.02))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return png_bytes(fig)


def _numbers(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


__all__ = ["coverage_curves", "coverage_figure", "seconds_per_epoch", "speed_figure"]

"""The evaluation's pictures: confusion matrix, accuracy vs coverage, embedding map (matplotlib Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from difflab.run import files


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    files.atomic_save(path, lambda out: fig.savefig(out, format=files.suffix_format(path)))
    plt.close(fig)
    return path


def plot_confusion(labels: np.ndarray, predicted: np.ndarray, class_names: tuple[str, ...], path: Path) -> Path:
    """Rows: requested class; columns: the judge's answer; cells: share of the row (scikit-learn's display)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=110)
    ConfusionMatrixDisplay.from_predictions(labels, predicted, labels=list(range(len(class_names))),
                                            display_labels=list(class_names), normalize="true",
                                            values_format=".2f", cmap="Blues", colorbar=False, ax=ax)
    for text in ax.texts:
        text.set_fontsize(7)
    ax.set(xlabel="judge's class", ylabel="requested class", title="Generated images: requested vs judged")
    return _save(fig, path)


def plot_coverage(curves: dict[str, tuple[np.ndarray, np.ndarray]], points: dict[str, dict], path: Path) -> Path:
    """Accuracy of the kept images against the share kept, per abstention rule; dots: IDK operating points."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5), dpi=110)
    for i, (name, (coverage, accuracy)) in enumerate(curves.items()):
        color = f"C{i}"
        ax.plot(100 * coverage, 100 * accuracy, color=color, label=name)
        if name in points:
            ax.plot(100 * points[name]["coverage"], 100 * points[name]["accuracy"], "o", color=color)
    ax.set(xlabel="coverage: images answered (%)", ylabel="accuracy on answered images (%)",
           title="Abstaining judges: accuracy vs coverage (dots: IDK judge's own abstentions)", xlim=(0, 101))
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    return _save(fig, path)


def plot_embedding_map(points: np.ndarray, labels, class_names: tuple[str, ...], method: str, path: Path) -> Path:
    """A 2-D scatter of embeddings, one colour per class."""
    fig, ax = plt.subplots(figsize=(6, 5.5), dpi=110)
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=4, alpha=0.6)
    else:
        labels = np.asarray(labels)
        cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
        for c in np.unique(labels):
            sel = labels == c
            ax.scatter(points[sel, 0], points[sel, 1], s=4, alpha=0.6, color=cmap(c % cmap.N), label=class_names[c])
        ax.legend(markerscale=3, fontsize=7, loc="best")
    ax.set(title=f"U-Net bottleneck of generated images ({method})", xticks=[], yticks=[])
    return _save(fig, path)

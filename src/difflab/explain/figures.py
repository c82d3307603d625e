"""Report-ready figures of the explain commands (matplotlib, headless Agg backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from difflab.run import files

CLASS_COLOURS = "tab10"


def t_label(requested: int, actual: int) -> str:
    if actual == 0:
        return "clean (t=0)"
    return f"t={actual}" if requested == actual else f"t={actual} (asked {requested})"


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.atomic_save(path, lambda out: fig.savefig(out, format=files.suffix_format(path), bbox_inches="tight"))
    plt.close(fig)
    return path


def _as_image(vector: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A flattened image `(C*H*W,)` or feature map → `(H, W)` (channel mean beyond one channel)."""
    return vector.reshape(shape).mean(0)


def plot_spectra(spectra, requested, of: str, path: Path) -> Path:
    """Explained-variance ratio per component (log scale) and its cumulative sum, one line per t."""
    fig, (ax, cum) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(spectra)))
    for s, asked, c in zip(spectra, requested, colours):
        k = np.arange(1, len(s.ratios) + 1)
        ax.plot(k, s.ratios, "o-", color=c, label=t_label(asked, s.t))
        cum.plot(k, np.cumsum(s.ratios), "o-", color=c, label=t_label(asked, s.t))
    ax.axhline(1 / spectra[0].dim, color="grey", ls="--", label=f"flat: 1/D = 1/{spectra[0].dim}")
    ax.set(yscale="log", xlabel="principal component", ylabel="explained variance ratio",
           title=f"PCA spectrum of {of} along sampling")
    cum.set(xlabel="number of components", ylabel="cumulative explained variance", ylim=(0, 1),
            title="Cumulative explained variance")
    for a in (ax, cum):
        a.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_components(spectra, requested, shape: tuple[int, ...], of: str, path: Path) -> Path:
    """Top components as images: one row per timestep, a shared symmetric colour scale per row."""
    k = len(spectra[0].components)
    fig, axes = plt.subplots(len(spectra), k, figsize=(1.3 * k + 1, 1.4 * len(spectra) + 0.6), dpi=110, squeeze=False)
    for row, (s, asked) in enumerate(zip(spectra, requested)):
        images = [_as_image(c, shape) for c in s.components]
        lim = max(np.abs(im).max() for im in images)
        for j, ax in enumerate(axes[row]):
            im = ax.imshow(images[j], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"PC{j + 1} {100 * s.ratios[j]:.1f}%", fontsize=7)
        axes[row][0].set_ylabel(t_label(asked, s.t), fontsize=8)
        fig.colorbar(im, ax=list(axes[row]), fraction=0.02, pad=0.01, label="loading")
    fig.suptitle(f"Top principal components of {of} (red +, blue −)" + (", mean over channels" if shape[0] > 1 else ""))
    return _save(fig, path)


def plot_scatter(spectra, requested, classes: np.ndarray, class_names, path: Path) -> Path:
    """PC1 vs PC2 at each timestep, points coloured by the final class."""
    fig, axes = plt.subplots(1, len(spectra), figsize=(3.4 * len(spectra) + 1.2, 3.8), dpi=110, squeeze=False,
                             layout="constrained")
    for ax, s, asked in zip(axes[0], spectra, requested):
        sc = ax.scatter(s.scores[:, 0], s.scores[:, 1], c=classes, cmap=CLASS_COLOURS, vmin=-0.5, vmax=9.5, s=6)
        ax.set(title=t_label(asked, s.t), xlabel=f"PC1 ({100 * s.ratios[0]:.1f}%)", ylabel=f"PC2 ({100 * s.ratios[1]:.1f}%)")
        ax.tick_params(labelsize=7)
    bar = fig.colorbar(sc, ax=list(axes[0]), ticks=range(10), fraction=0.02)
    bar.set_ticklabels([class_names[i] if i < len(class_names) else "" for i in range(10)])
    bar.set_label("final class")
    fig.suptitle("First two principal components, coloured by the class each trajectory ends in")
    return _save(fig, path)


def plot_overlays(columns: list[str], rows: list[tuple[str, list, list]], title: str, path: Path,
                  *, colour_label: str = "attribution") -> Path:
    """Grid of images (grey) with heat maps on top; `rows` = [(name, images (1,C,H,W), heats (1,1,H,W) or None)]."""
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(2.1 * len(columns) + 1.2, 2.1 * len(rows) + 0.5),
                             dpi=110, squeeze=False)
    for r, (name, images, heats) in enumerate(rows):
        values = np.concatenate([h.flatten().numpy() for h in heats if h is not None] or [np.ones(1)])
        top = float(np.quantile(np.abs(values), 0.995)) or 1.0  # robust: a few pixels must not wash out the rest
        cmap, vmin = ("RdBu_r", -top) if values.min() < -0.05 * top else ("inferno", 0.0)
        heat = None
        for c, ax in enumerate(axes[r]):
            ax.imshow(images[c][0].mean(0).numpy(), cmap="gray", vmin=-1, vmax=1)
            if heats[c] is not None:
                heat = ax.imshow(heats[c][0, 0].numpy(), cmap=cmap, vmin=vmin, vmax=top, alpha=0.7)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
        axes[r][0].set_ylabel(name, fontsize=8)
        if heat is not None:
            fig.colorbar(heat, ax=list(axes[r]), fraction=0.02, pad=0.01, label=colour_label)
    fig.suptitle(f"{title}\ncolour scale shared along each row, clipped at its 99.5th percentile of |value|", fontsize=10)
    return _save(fig, path)


def plot_emergence(result: dict, class_names, path: Path, *, sampler: str = "", noun: str = "image") -> Path:
    """Mean p(final class | x̂₀) against the fraction of steps done, per class and overall."""
    x = np.array(result["step_fraction"])
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    colours = plt.get_cmap(CLASS_COLOURS)
    for c, curve in result["per_class"].items():
        ax.plot(x, curve, color=colours(int(c) % 10), lw=1, alpha=0.7, label=f"class {class_names[int(c)]}")
    ax.plot(x, result["mean"], color="black", lw=2.5, label="mean")
    for th, at in result["appears"].items():
        ax.axhline(float(th), color="grey", ls=":", lw=1)
        if at is not None:
            ax.axvline(at, color="grey", ls="--", lw=1)
            ax.annotate(f"p≥{th} at {100 * at:.0f}% of steps", (at, float(th)), xytext=(5, -14),
                        textcoords="offset points", fontsize=8)
    secondary = ax.secondary_xaxis("top")
    secondary.set_xticks(x, [str(t) for t in result["timesteps"]], fontsize=7)
    secondary.set_xlabel("timestep t of the step")
    ax.set(xlabel="fraction of sampling steps done", ylabel="judge p(final class | x̂₀)", ylim=(0, 1.02),
           title=f"When the {noun} appears ({result['n']} samples{', ' + sampler if sampler else ''})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return _save(fig, path)


def plot_filters(filters: torch.Tensor, path: Path) -> Path:
    """First-layer filters `(c0, C, k, k)` (channel mean), one symmetric colour scale."""
    w = filters.mean(1).numpy()  # (c0, k, k)
    cols = min(8, len(w))
    rows = -(-len(w) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols + 1, 1.2 * rows + 0.6), dpi=110, squeeze=False)
    lim = float(np.abs(w).max())
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        if i < len(w):
            im = ax.imshow(w[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"filter {i}", fontsize=7)
        else:
            ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03, label="weight")
    fig.suptitle(f"First-layer filters conv_in ({w.shape[1]}x{w.shape[2]})")
    return _save(fig, path)


def plot_activations(result: dict, path: Path, *, limit: int = 32) -> Path:
    """The input and up to `limit` channels of the layer's output, one shared colour scale."""
    maps = result["maps"][:limit].numpy()  # (c, h, w)
    cols = min(8, len(maps) + 1)
    rows = -(-(len(maps) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols + 1, 1.3 * rows + 0.6), dpi=110, squeeze=False)
    lim = float(np.abs(maps).max()) or 1.0
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([]), ax.set_yticks([])
        if i == 0:
            ax.imshow(result["input"][0].mean(0).numpy(), cmap="gray", vmin=-1, vmax=1)
            ax.set_title(f"input, t={result['t']}", fontsize=7)
        elif i <= len(maps):
            im = ax.imshow(maps[i - 1], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(f"channel {i - 1}", fontsize=7)
        else:
            ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03, label="activation")
    shown = f"first {len(maps)} of {len(result['maps'])}" if len(result["maps"]) > len(maps) else f"{len(maps)}"
    fig.suptitle(f"Activations of {result['layer']} ({shown} channels, {maps.shape[1]}x{maps.shape[2]})")
    return _save(fig, path)

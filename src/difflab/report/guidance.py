"""The guidance sweep every judged run gets: what the guidance strength w buys, and what it costs.

Higher w makes samples more recognisable (judge accuracy up) and less varied (FD up, recall down);
Ho & Salimans 2022, Fig. 4 (CFG), Karras et al. 2024 (autoguidance). `guidance_sweep(run)` draws the
same seeds at a few strengths around the run's default, with the run's own guidance method, interval
and rescale, measures each set with one `QualityProbe`, and writes what the report's "Guidance: the
trade" section shows:

    RUN/eval/guidance_sweep.json      one row per w: accuracy, FD, FD/floor, recall, precision, diversity
    RUN/samples/guidance/w<w>.png     the first sample of each class at that w (the same noise in every strip)
    RUN/plots/guidance_frontier.png   accuracy against FD/floor, each point labelled by w, the default starred
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from difflab import progress
from difflab.errors import UserError
from difflab.report.images import save_grid
from difflab.report.plots import plt  # the Agg backend, chosen there before pyplot is imported
from difflab.run import files
from difflab.sampling import class_labels

EVAL_NAME = "guidance_sweep"  # RUN/eval/guidance_sweep.json
STRIPS = ("samples", "guidance")  # RUN/samples/guidance/w<w>.png
FRONTIER = ("plots", "guidance_frontier.png")
ACCURACY_TARGET = 0.99  # the default's rule: the lowest FD among strengths whose samples the judge recognises 99% of
# (or as often as it recognises real test images, where that is less: 92.6% on Fashion-MNIST, `accuracy_target`)
MAX_GUIDANCE = 100.0  # the Sampler's upper bound on w
MIN_IMAGES = 20  # a QualityProbe's minimum sample size
ROW_KEYS = ("accuracy", "confidence", "fd", "fd_floor", "fd_ratio", "recall", "precision", "diversity")


def skip_reason(run) -> str | None:
    """Why `run` gets no sweep, or None: the runs the end-of-run judge figure skips (denoisers, unconditional
    runs), text runs, and distilled runs (their guidance is baked into the weights)."""
    if not run.spec.samplable:
        return "a single-step denoiser has nothing to sample"
    if not run.num_classes:
        return "an unconditional run has no guidance to sweep"
    if run.is_text:
        return "a text run's guidance is compared per caption set: `difflab evaluate RUN --prompts --guidance W`"
    if run.folder.read_distill() is not None:
        return "a distilled run samples at the guidance baked into it"
    return None


def default_strengths(default: float) -> list[float]:
    """1, half the default (when above 1), the default, 1.5x and 2x, each but the ends rounded to .5, at most 100."""
    def half_step(x: float) -> float:
        return round(x * 2) / 2

    picks = {1.0, float(default), half_step(default * 1.5), float(default) * 2}
    if half_step(default / 2) > 1:
        picks.add(half_step(default / 2))
    return sorted(w for w in picks if w <= MAX_GUIDANCE)


def sweep_strengths(strengths, default: float) -> list[float]:
    """The strengths to draw: `strengths` (default: `default_strengths`), always with the run's default among them."""
    if strengths is None:
        return default_strengths(default)
    try:
        ws = [float(w) for w in strengths]
    except (TypeError, ValueError):
        ws = []
    if not ws or any(not 0 <= w <= MAX_GUIDANCE for w in ws):  # NaN fails the range check too
        raise UserError(f"guidance sweep strengths must be numbers in [0, {MAX_GUIDANCE:g}], got {list(strengths)}")
    return sorted({*ws, float(default)})


def guidance_sweep(run, *, strengths=None, n_per_class: int = 20, seed: int = 0, verbose: bool = False) -> dict | None:
    """Sample `n_per_class` images per class at each strength (same `seed`, so the strips compare), measure them
    with a `QualityProbe` and write eval/guidance_sweep.json, one strip per w and the frontier plot.

    Returns the JSON's content, or None for a run that gets no sweep (`skip_reason`)."""
    if skip_reason(run) is not None:
        return None
    from difflab.evaluation.quality import QualityProbe
    from difflab.evaluation.suite import rounded

    sampler = run.sampler()
    ws = sweep_strengths(strengths, sampler.guidance)
    labels = class_labels(run.num_classes, n_per_class)  # (N,) class 0 n_per_class times, then class 1, ...
    if len(labels) < MIN_IMAGES:
        raise UserError(f"a guidance sweep needs at least {MIN_IMAGES} images, got n_per_class={n_per_class} for "
                        f"{run.num_classes} classes; fix: n_per_class >= {-(-MIN_IMAGES // run.num_classes)}")
    auto = f" + autoguidance {sampler.autoguidance:g}" if sampler.autoguidance != 1 else ""
    redraws = sampler.redraws if run.filter is not None else 0  # the filter redraws what it rejects (sampling/filter.py)
    auto += " + filter" if redraws else ""
    label = (f"guidance sweep: {len(labels)} images at each of w = {', '.join(f'{w:g}' for w in ws)} "
             f"({sampler.guidance_method}{auto})")
    started = time.monotonic()
    c = run.config
    probe = QualityProbe(c.dataset, data_dir=c.data_dir, image_size=c.image_size)
    rows, target = [], accuracy_target(probe.judge.accuracy)
    with progress.bar(len(ws), label, unit="strength", enabled=verbose) as shown:
        for w in ws:
            rows.append(measure_strength(run, probe, labels, w, seed=seed, default=sampler.guidance))
            shown.update()
    result = {"title": "Guidance sweep", "method": sampler.guidance_method,
              "interval": list(sampler.guidance_interval), "rescale": sampler.guidance_rescale,
              "autoguidance": sampler.autoguidance, "redraws": redraws, "solver": sampler.solver, "steps": sampler.steps, "seed": seed, "n_per_class": n_per_class, "n": len(labels),
              "default": sampler.guidance, "lowest_fd_at_target": lowest_fd_at_target(rows, target),
              "accuracy_target": target, "judge_real_accuracy": probe.judge.accuracy, "rows": rows, "seconds": time.monotonic() - started}
    result = rounded(result)
    run.folder.write_eval(EVAL_NAME, result)
    plot_frontier(result["rows"], run.folder.sub(*FRONTIER, create=True), target)
    return result


def measure_strength(run, probe, labels: torch.Tensor, w: float, *, seed: int, default: float) -> dict:
    """One row of the sweep: images at guidance `w`, their numbers, and their strip PNG."""
    images = run.sample(labels, seed=seed, guidance=w)  # (N, C, H, W) in [-1, 1]
    numbers = probe.measure(images, labels)
    per_class = len(labels) // run.num_classes
    strip = strip_path(run.folder, w)
    save_grid(images[::per_class], strip, nrow=run.num_classes, scale=2)  # the first sample of each class
    return {"w": w, "default": w == default, **{k: numbers[k] for k in ROW_KEYS},
            "strip": strip.relative_to(run.folder.path).as_posix()}


def strip_path(folder, w: float) -> Path:
    return folder.sub(*STRIPS, f"w{w:g}.png", create=True)


def accuracy_target(judge_real_accuracy: float) -> float:
    """The accuracy a strength must reach: 99%, or the judge's own accuracy on real test images where that is
    lower (no sample set can be recognised more often than the data itself; digits 99.4%, Fashion 92.6%)."""
    return round(min(ACCURACY_TARGET, judge_real_accuracy), 3)


def lowest_fd_at_target(rows: list[dict], target: float = ACCURACY_TARGET) -> float | None:
    """The w the default's rule picks from these rows: accuracy >= `target` at the lowest FD (None: no row)."""
    ok = [r for r in rows if r["accuracy"] >= target]
    return min(ok, key=lambda r: r["fd_ratio"])["w"] if ok else None


def plot_frontier(rows: list[dict], out: Path, target: float = ACCURACY_TARGET) -> Path:
    """Accuracy against FD/floor, one point per w joined in order of w, the default starred."""
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    xs, ys = [r["fd_ratio"] for r in rows], [100 * r["accuracy"] for r in rows]
    ax.plot(xs, ys, "-o", color="tab:blue", zorder=2)
    for r, x, y in zip(rows, xs, ys):
        ax.annotate(f"w={r['w']:g}", (x, y), textcoords="offset points", xytext=(5, 5), fontsize=9)
    for r, x, y in zip(rows, xs, ys):
        if r["default"]:
            ax.plot([x], [y], "*", color="tab:orange", markersize=18, zorder=3, label=f"default w={r['w']:g}")
    ax.axhline(100 * target, color="grey", linestyle=":", label=f"{100 * target:g}% recognised")
    ax.set(xlabel="FD / real-data floor (lower: closer to the data)", ylabel="judge accuracy (%)",
           title="Guidance: recognisable vs. like the data")
    ax.margins(x=0.15, y=0.08)  # room for the labels at the ends
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    files.atomic_save(out, lambda buffer: fig.savefig(buffer, format=files.suffix_format(out)))
    plt.close(fig)
    return out


__all__ = ["default_strengths", "guidance_sweep", "plot_frontier", "skip_reason"]

"""The explain commands as functions: a loaded run and options in, pictures and `<name>.json` out.

Each writes into `out` (default: the run's `explain/<command>/`, through `RunFolder`) and returns
`(paths written, the JSON's numbers)`. Requested timesteps snap to the nearest step the sampler
visits (the JSON records both); t = 0 means the finished image.
"""

from __future__ import annotations

from pathlib import Path

import torch

from difflab.data.nouns import noun
from difflab.errors import UserError
from difflab.explain import figures
from difflab.run import files

Explained = tuple[list[Path], dict]  # (PNG paths then the JSON path, the numbers written)


def output_folder(run, command: str, out: str | Path | None) -> Path:
    """`out`, or the run's `explain/<command>/`."""
    return Path(out) if out is not None else run.folder.sub("explain", command)


def pick_label(run, label: int | None) -> torch.Tensor | None:
    """The class to explain `(1,)`: `label`, else 7 (or the last class); None for an unconditional run."""
    if not run.num_classes:
        if label is not None:
            raise UserError("this run is unconditional; fix: drop --label")
        return None
    label = min(7, run.num_classes - 1) if label is None else label
    if not 0 <= label < run.num_classes:
        raise UserError(f"--label {label} is out of range for a {run.num_classes}-class run; use 0..{run.num_classes - 1}")
    return torch.tensor([label])


def sampling_info(run, settings: dict) -> dict:
    """The sampler overrides asked for and the timesteps that sampler visits (what requests snap to)."""
    visited = run.sampler(**settings).timesteps(len(run.alphas_cumprod))
    return dict(settings=settings, visited_timesteps=visited)


def write_numbers(out: Path, name: str, numbers: dict, pngs: list[Path]) -> Explained:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    files.write_json(path, numbers)
    return [*pngs, path], numbers


def cycle_labels(num_classes: int, n: int) -> torch.Tensor | None:
    return torch.arange(n) % num_classes if num_classes else None


# --- the commands ------------------------------------------------------------------------------
def explain_pca(run, out: Path, *, k: int = 10, n: int = 500, timesteps=(999, 750, 500, 250, 0), of: str = "xt",
                seed: int = 0, settings: dict | None = None) -> Explained:
    """Principal components of x_t, x̂₀ or bottleneck features at each requested timestep."""
    from difflab.explain import pca, trajectories

    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    pca.check_k(k, n)
    info = sampling_info(run, settings or {})
    labels = cycle_labels(run.num_classes, n)
    traj = trajectories.collect(run, labels, timesteps=list(timesteps), n=None if labels is not None else n,
                                seed=seed, settings=info["settings"])
    spectra = pca.pca_over_time(traj, k=k, of=of)
    classes = final_classes(run, traj)
    shape = tuple(getattr(traj, of)[spectra[0].t].shape[1:])
    req = traj.requested
    pngs = [figures.plot_spectra(spectra, req, of, out / f"spectrum_{of}.png"),
            figures.plot_components(spectra, req, shape, of, out / f"components_{of}.png"),
            figures.plot_scatter(spectra, req, classes, run.class_names, out / f"scatter_{of}.png")]
    numbers = dict(of=of, n=n, k=k, seed=seed, **info,
                   timesteps=[dict(requested_t=r, **s.summary()) for r, s in zip(req, spectra)])
    return write_numbers(out, "pca", numbers, pngs)


def final_classes(run, traj):
    """The conditioning labels, or the judge's verdict on the final images for an unconditional run."""
    if traj.labels is not None:
        return traj.labels.numpy()
    from difflab.evaluation import load_judge

    c = run.config
    judge = load_judge(c.dataset, data_dir=c.data_dir, image_size=c.image_size)
    return judge.probabilities(traj.final).argmax(1).numpy()


def explain_attribute(run, out: Path, *, method: str = "all", noise: str = "live", target: str = "eps-proj",
                      layer: str | None = None, timesteps=(900, 500, 100), label: int | None = None, seed: int = 0,
                      settings: dict | None = None) -> Explained:
    """Captum attributions of a scalar read off the denoiser's output, at each requested timestep."""
    from difflab.explain import attribution, trajectories

    info = sampling_info(run, settings or {})
    methods = list(attribution.METHODS) if method == "all" else [method]
    layer = layer or attribution.last_decoder_conv(run.model)
    trajectories.find_module(run.model, layer)  # a bad --layer fails before sampling
    labels = pick_label(run, label)
    traj = trajectories.collect(run, labels, timesteps=list(timesteps), n=None if labels is not None else 1,
                                seed=seed, settings=info["settings"])
    rows = attribution.attribute_over_time(run, traj, methods, noise=noise, target=target, layer=layer, seed=seed)
    title = (f"Attributions of {target} to the input, {noise} noise"
             + (f", class {run.class_names[int(labels[0])]}" if labels is not None else ""))
    png = figures.plot_overlays([figures.t_label(r, a) for r, a in zip(traj.requested, traj.actual)],
                                _attribution_grid(rows, methods, layer, noise), title,
                                out / f"attribute_{noise}_{target}.png")
    numbers = dict(target=target, noise=noise, layer=layer, seed=seed, **info,
                   label=int(labels[0]) if labels is not None else None,
                   results=[{k: v for k, v in r.items() if k not in ("input", "map")} | _map_stats(r["map"])
                            for r in rows])
    return write_numbers(out, "attribute", numbers, [png])


def _attribution_grid(rows: list[dict], methods: list[str], layer: str, noise: str) -> list[tuple]:
    """Rows of `figures.plot_overlays`: the inputs, then one row of maps per method."""
    first = [r["input"] for r in rows if r["method"] == methods[0]]
    grid = [("input x_t" if noise == "live" else "input x_T (constant)", first, [None] * len(first))]
    for m in methods:
        picked = [r for r in rows if r["method"] == m]
        grid.append((f"{m}\n({layer})" if m == "grad-cam" else m, [r["input"] for r in picked],
                     [r["map"] for r in picked]))
    return grid


def _map_stats(maps) -> dict:
    return dict(map_abs_sum=float(maps.abs().sum()), map_max=float(maps.max()), map_min=float(maps.min()))


def explain_class_saliency(run, out: Path, *, timesteps=(999, 750, 500, 250, 100), label: int | None = None,
                           seed: int = 0, settings: dict | None = None) -> Explained:
    """Where, and because of which pixels, the class changes the noise estimate along sampling."""
    from difflab.explain import class_saliency, trajectories

    labels = pick_label(run, label)
    if labels is None:
        raise UserError("class-saliency needs a class-conditional run; this run is unconditional")
    info = sampling_info(run, settings or {})
    traj = trajectories.collect(run, labels, timesteps=list(timesteps), seed=seed, settings=info["settings"])
    rows = class_saliency.class_saliency(run, traj)
    inputs = [r["input"] for r in rows]
    grid = [("input x_t", inputs, [None] * len(rows)), ("|ε_c − ε_u|", inputs, [r["difference"] for r in rows]),
            ("IG of ⟨ε_c − ε_u, u⟩", inputs, [r["map"] for r in rows])]
    name = run.class_names[int(labels[0])]
    png = figures.plot_overlays([figures.t_label(r["requested_t"], r["t"]) for r in rows], grid,
                                f"Where class {name} steers the noise estimate", out / "class_saliency.png",
                                colour_label="|difference| / attribution")
    numbers = dict(label=int(labels[0]), seed=seed, **info,
                   results=[{k: v for k, v in r.items() if k not in ("input", "difference", "map")} for r in rows])
    return write_numbers(out, "class_saliency", numbers, [png])


def explain_kernels(run, out: Path, *, layer: str = "conv_in", label: int | None = None, t: int = 0,
                    seed: int = 0) -> Explained:
    """First-layer filters and `layer`'s activation maps on a sampled image noised to `t`."""
    from difflab.explain import kernels

    labels = pick_label(run, label)
    image = run.sample(labels, n=None if labels is not None else 1, seed=seed)[:1]  # (1, C, H, W)
    acts = kernels.activations(run, layer, image, t, int(labels[0]) if labels is not None else None, seed=seed)
    filters = kernels.first_filters(run.model)
    pngs = [figures.plot_filters(filters, out / "filters_conv_in.png"),
            figures.plot_activations(acts, out / f"activations_{layer.replace('.', '_')}.png")]
    numbers = dict(filters_shape=list(filters.shape), filter_norms=filters.flatten(1).norm(dim=1).tolist(),
                   layer=layer, t=t, label=int(labels[0]) if labels is not None else None,
                   activation_shape=list(acts["maps"].shape), channel_mean=acts["channel_mean"],
                   channel_max=acts["channel_max"])
    return write_numbers(out, "kernels", numbers, pngs)


def explain_emergence(run, out: Path, *, n: int = 200, seed: int = 0, settings: dict | None = None) -> Explained:
    """When the picture appears: the judge's p(final class | x̂₀) after every sampler step."""
    from difflab.evaluation import load_judge
    from difflab.explain import emergence

    info = sampling_info(run, settings or {})
    c = run.config
    judge = load_judge(c.dataset, data_dir=c.data_dir, image_size=c.image_size)
    result = emergence.emergence(run, judge, n=n, seed=seed, settings=info["settings"])
    chosen = run.sampler(**info["settings"])
    sampler = f"{chosen.solver} {chosen.steps} steps, guidance {chosen.guidance:g}"
    png = figures.plot_emergence(result, run.class_names, out / "emergence.png", sampler=sampler,
                                 noun=noun(c.dataset, singular=True))
    return write_numbers(out, "emergence", dict(seed=seed, judge_accuracy=judge.accuracy, **info, **result), [png])


__all__ = ["explain_attribute", "explain_class_saliency", "explain_emergence", "explain_kernels", "explain_pca",
           "output_folder"]

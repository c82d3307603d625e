"""`difflab explain <pca|attribute|class-saliency|kernels|emergence> RUN`: what guides the denoiser.

Each command writes PNGs and `<command>.json` (the numbers behind them) to `RUN/explain/<command>/`
or `--out DIR`. Requested timesteps snap to the nearest step the sampler visits (the JSON records
both); t = 0 means the finished image.
"""

from __future__ import annotations

import json
from pathlib import Path

from difflab.cli.options import Parser, add_sampler_options, int_list, number, sampler_settings
from difflab.errors import UserError

DEFAULT_TIMES = (999, 750, 500, 250, 0)
ATTRIBUTE_TIMES = (900, 500, 100)


def register(sub) -> None:
    p = sub.add_parser("explain", help="PCA over time, attributions, kernels, emergence of a run")
    inner = p.add_subparsers(dest="what", required=True, parser_class=Parser)
    pca = _command(inner, "pca", "principal components of x_t, x0 or bottleneck features per timestep", cmd_pca)
    pca.add_argument("--k", type=number(int), default=10, help="components kept (10)")
    pca.add_argument("--n", type=number(int), default=500, help="trajectories sampled, classes in turn (500)")
    pca.add_argument("--timesteps", type=int_list, default=DEFAULT_TIMES, help="(999,750,500,250,0); 0 = clean end")
    pca.add_argument("--of", choices=("xt", "x0", "features"), default="xt", help="what to decompose (xt)")
    att = _command(inner, "attribute", "Captum attributions of the denoiser's output", cmd_attribute)
    att.add_argument("--method", choices=("saliency", "integrated-gradients", "grad-cam", "all"), default="all")
    att.add_argument("--noise", choices=("live", "constant"), default="live",
                     help="live: the x_t met while sampling; constant: the starting noise at every t (live)")
    att.add_argument("--target", choices=("eps-proj", "x0-ink"), default="eps-proj",
                     help="scalar explained: eps-proj = predicted noise on its own direction; "
                          "x0-ink = mean predicted x0 on the final digit's ink (eps-proj)")
    att.add_argument("--layer", help="Grad-CAM layer, a named_modules() path (the last decoder convolution)")
    _times_and_label(att, ATTRIBUTE_TIMES)
    cls = _command(inner, "class-saliency", "where the class changes the noise estimate, along sampling", cmd_class)
    _times_and_label(cls, (999, 750, 500, 250, 100))
    ker = _command(inner, "kernels", "first-layer filters and a layer's activation maps", cmd_kernels, sampler=False)
    ker.add_argument("--layer", default="conv_in", help="layer whose activations are shown (conv_in)")
    ker.add_argument("--label", type=number(int), help="class of the sampled input digit (7)")
    ker.add_argument("--t", type=number(int), default=0, help="noise level of the input (0: the clean digit)")
    ker.add_argument("--seed", type=number(int), default=0)
    ker.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    emg = _command(inner, "emergence", "when the digit appears: judge p(final class | x0) per step", cmd_emergence)
    emg.add_argument("--n", type=number(int), default=200, help="images, classes in turn (200)")


def _command(inner, name: str, help_text: str, func, *, sampler: bool = True):
    p = inner.add_parser(name, help=help_text, description=help_text)
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path, help=f"output folder (RUN/explain/{name})")
    if sampler:
        add_sampler_options(p)
    p.set_defaults(func=func)
    return p


def _times_and_label(p, times) -> None:
    p.add_argument("--timesteps", type=int_list, default=times, help=f"({','.join(map(str, times))}); 0 = clean end")
    p.add_argument("--label", type=number(int), help="class to sample (7, or the last class)")


def _load(args):
    from difflab.run import Run

    loaded = Run.load(args.run, device=args.device)
    out = args.out or args.run / "explain" / args.what
    return loaded, Path(out)


def _label(loaded, label):
    import torch

    if not loaded.num_classes:
        if label is not None:
            raise UserError("this run is unconditional; fix: drop --label")
        return None
    label = min(7, loaded.num_classes - 1) if label is None else label
    if not 0 <= label < loaded.num_classes:
        raise UserError(f"--label {label} is out of range for a {loaded.num_classes}-class run; use 0..{loaded.num_classes - 1}")
    return torch.tensor([label])


def _write(out: Path, name: str, numbers: dict, pngs: list[Path]) -> int:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(numbers, indent=2))
    for p in [*pngs, path]:
        print(f"wrote {p}")
    return 0


def _times(loaded, args) -> dict:
    from difflab.diffusion import timesteps

    settings = sampler_settings(args)
    visited = timesteps(len(loaded.alphas_cumprod), settings["steps"] or loaded.config.sample_steps)
    return dict(settings=settings, visited_timesteps=visited)


def cmd_pca(args) -> int:
    from difflab.explain import figures, pca, trajectories

    loaded, out = _load(args)
    if args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    pca.check_k(args.k, args.n)
    info = _times(loaded, args)
    labels = _cycle_labels(loaded.num_classes, args.n)
    traj = trajectories.collect(loaded, labels, timesteps=list(args.timesteps), n=None if labels is not None else args.n,
                                seed=args.seed, settings=info["settings"])
    spectra = pca.pca_over_time(traj, k=args.k, of=args.of)
    classes = _final_classes(loaded, traj)
    shape = tuple(getattr(traj, args.of)[spectra[0].t].shape[1:])
    req = traj.requested
    pngs = [figures.plot_spectra(spectra, req, args.of, out / f"spectrum_{args.of}.png"),
            figures.plot_components(spectra, req, shape, args.of, out / f"components_{args.of}.png"),
            figures.plot_scatter(spectra, req, classes, loaded.class_names, out / f"scatter_{args.of}.png")]
    numbers = dict(of=args.of, n=args.n, k=args.k, seed=args.seed, **info,
                   timesteps=[dict(requested_t=r, **s.summary()) for r, s in zip(req, spectra)])
    return _write(out, "pca", numbers, pngs)


def _cycle_labels(num_classes: int, n: int):
    import torch

    return torch.arange(n) % num_classes if num_classes else None


def _final_classes(loaded, traj):
    """The conditioning labels, or the judge's verdict on the final images for an unconditional run."""
    if traj.labels is not None:
        return traj.labels.numpy()
    from difflab.evaluation import load_judge

    judge = load_judge(loaded.config.dataset, data_dir=loaded.config.data_dir, image_size=loaded.config.image_size)
    return judge.probabilities(traj.final).argmax(1).numpy()


def cmd_attribute(args) -> int:
    from difflab.explain import attribution, figures, trajectories

    loaded, out = _load(args)
    info = _times(loaded, args)
    methods = list(attribution.METHODS) if args.method == "all" else [args.method]
    layer = args.layer or attribution.last_decoder_conv(loaded.model)
    trajectories.find_module(loaded.model, layer)  # a bad --layer fails before sampling
    labels = _label(loaded, args.label)
    traj = trajectories.collect(loaded, labels, timesteps=list(args.timesteps), n=None if labels is not None else 1,
                                seed=args.seed, settings=info["settings"])
    rows = attribution.attribute_over_time(loaded, traj, methods, noise=args.noise, target=args.target,
                                           layer=layer, seed=args.seed)
    columns = [figures.t_label(r, a) for r, a in zip(traj.requested, traj.actual)]
    grid = [("input x_t" if args.noise == "live" else "input x_T (constant)",
             [r["input"] for r in rows if r["method"] == methods[0]], [None] * len(columns))]
    for m in methods:
        picked = [r for r in rows if r["method"] == m]
        name = f"{m}\n({layer})" if m == "grad-cam" else m
        grid.append((name, [r["input"] for r in picked], [r["map"] for r in picked]))
    title = (f"Attributions of {args.target} to the input, {args.noise} noise"
             + (f", class {loaded.class_names[int(labels[0])]}" if labels is not None else ""))
    png = figures.plot_overlays(columns, grid, title, out / f"attribute_{args.noise}_{args.target}.png")
    numbers = dict(target=args.target, noise=args.noise, layer=layer, seed=args.seed, **info,
                   label=int(labels[0]) if labels is not None else None,
                   results=[{k: v for k, v in r.items() if k not in ("input", "map")} | _map_stats(r["map"])
                            for r in rows])
    return _write(out, "attribute", numbers, [png])


def _map_stats(maps) -> dict:
    return dict(map_abs_sum=float(maps.abs().sum()), map_max=float(maps.max()), map_min=float(maps.min()))


def cmd_class(args) -> int:
    from difflab.explain import class_saliency, figures, trajectories

    loaded, out = _load(args)
    labels = _label(loaded, args.label)
    if labels is None:
        raise UserError("class-saliency needs a class-conditional run; this run is unconditional")
    info = _times(loaded, args)
    traj = trajectories.collect(loaded, labels, timesteps=list(args.timesteps), seed=args.seed,
                                settings=info["settings"])
    rows = class_saliency.class_saliency(loaded, traj)
    columns = [figures.t_label(r["requested_t"], r["t"]) for r in rows]
    inputs = [r["input"] for r in rows]
    grid = [("input x_t", inputs, [None] * len(rows)), ("|ε_c − ε_u|", inputs, [r["difference"] for r in rows]),
            ("IG of ⟨ε_c − ε_u, u⟩", inputs, [r["map"] for r in rows])]
    name = loaded.class_names[int(labels[0])]
    png = figures.plot_overlays(columns, grid, f"Where class {name} steers the noise estimate", out / "class_saliency.png",
                                colour_label="|difference| / attribution")
    numbers = dict(label=int(labels[0]), seed=args.seed, **info,
                   results=[{k: v for k, v in r.items() if k not in ("input", "difference", "map")} for r in rows])
    return _write(out, "class_saliency", numbers, [png])


def cmd_kernels(args) -> int:
    from difflab.explain import figures, kernels

    loaded, out = _load(args)
    labels = _label(loaded, args.label)
    image = loaded.sample(labels, n=None if labels is not None else 1, seed=args.seed)[:1]  # (1, C, H, W)
    acts = kernels.activations(loaded, args.layer, image, args.t, int(labels[0]) if labels is not None else None,
                               seed=args.seed)
    filters = kernels.first_filters(loaded.model)
    safe = args.layer.replace(".", "_")
    pngs = [figures.plot_filters(filters, out / "filters_conv_in.png"),
            figures.plot_activations(acts, out / f"activations_{safe}.png")]
    numbers = dict(filters_shape=list(filters.shape), filter_norms=filters.flatten(1).norm(dim=1).tolist(),
                   layer=args.layer, t=args.t, label=int(labels[0]) if labels is not None else None,
                   activation_shape=list(acts["maps"].shape), channel_mean=acts["channel_mean"],
                   channel_max=acts["channel_max"])
    return _write(out, "kernels", numbers, pngs)


def cmd_emergence(args) -> int:
    from difflab.evaluation import load_judge
    from difflab.explain import emergence, figures

    loaded, out = _load(args)
    info = _times(loaded, args)
    cfg = loaded.config
    judge = load_judge(cfg.dataset, data_dir=cfg.data_dir, image_size=cfg.image_size)
    result = emergence.emergence(loaded, judge, n=args.n, seed=args.seed, settings=info["settings"])
    chosen = loaded.settings(**{k: v for k, v in info["settings"].items() if k != "eta"})
    sampler = f"{chosen.solver} {chosen.steps} steps, guidance {chosen.guidance:g}"
    png = figures.plot_emergence(result, loaded.class_names, out / "emergence.png", sampler=sampler)
    for th, at in result["appears"].items():
        print(f"mean p(final class) >= {th}: " + (f"{100 * at:.0f}% of the steps" if at is not None else "never"))
    return _write(out, "emergence", dict(seed=args.seed, judge_accuracy=judge.accuracy, **info, **result), [png])

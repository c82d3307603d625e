"""`difflab explain <pca|attribute|class-saliency|kernels|emergence> RUN`: what guides the denoiser.

Each command writes PNGs and `<command>.json` (the numbers behind them) to `RUN/explain/<command>/`
or `--out DIR` (`difflab.explain.commands` does the work). Requested timesteps snap to the nearest
step the sampler visits (the JSON records both); t = 0 means the finished image.
"""

from __future__ import annotations

from pathlib import Path

from difflab.cli.options import Parser, add_sampler_options, int_list, number, sampler_settings
from difflab.run.outputs import check_folder, guard

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
                          "x0-ink = mean predicted x0 on the final image's ink (eps-proj)")
    att.add_argument("--layer", help="Grad-CAM layer, a named_modules() path (the last decoder convolution)")
    _times_and_label(att, ATTRIBUTE_TIMES)
    cls = _command(inner, "class-saliency", "where the class changes the noise estimate, along sampling", cmd_class)
    _times_and_label(cls, (999, 750, 500, 250, 100))
    ker = _command(inner, "kernels", "first-layer filters and a layer's activation maps", cmd_kernels, sampler=False)
    ker.add_argument("--layer", default="conv_in", help="layer whose activations are shown (conv_in)")
    ker.add_argument("--label", type=number(int), help="class of the sampled input image (7)")
    ker.add_argument("--t", type=number(int), default=0, help="noise level of the input (0: the clean image)")
    ker.add_argument("--seed", type=number(int), default=0)
    ker.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    emg = _command(inner, "emergence", "when the picture appears: judge p(final class | x0) per step", cmd_emergence)
    emg.add_argument("--n", type=number(int), default=200, help="images, classes in turn (200)")


def _command(inner, name: str, help_text: str, func, *, sampler: bool = True):
    p = inner.add_parser(name, help=help_text, description=help_text)
    p.add_argument("run", type=Path)
    p.add_argument("--out", type=Path, help=f"output folder (RUN/explain/{name})")
    if sampler:
        add_sampler_options(p)
    p.set_defaults(func=guard(func))
    return p


def _times_and_label(p, times) -> None:
    p.add_argument("--timesteps", type=int_list, default=times, help=f"({','.join(map(str, times))}); 0 = clean end")
    p.add_argument("--label", type=number(int), help="class to sample (7, or the last class)")


def _run(args, command: str, explain, **options) -> int:
    """Load the run, call `difflab.explain.commands.<explain>`, print what it wrote."""
    from difflab.explain import commands
    from difflab.run import Run

    run = Run.load(args.run, device=args.device)
    out = check_folder(commands.output_folder(run, command, args.out), "--out")  # before any sampling
    if hasattr(args, "solver"):
        options["settings"] = sampler_settings(args)
    paths, numbers = getattr(commands, explain)(run, out, seed=args.seed, **options)
    if command == "emergence":
        for th, at in numbers["appears"].items():
            print(f"mean p(final class) >= {th}: " + (f"{100 * at:.0f}% of the steps" if at is not None else "never"))
    names = ", ".join(str(p.relative_to(out)) if p.is_relative_to(out) else str(p) for p in map(Path, paths))
    print(f"wrote {len(paths)} file(s) to {out}/: {names}")  # one line: what, and where
    return 0


def cmd_pca(args) -> int:
    return _run(args, "pca", "explain_pca", k=args.k, n=args.n, timesteps=args.timesteps, of=args.of)


def cmd_attribute(args) -> int:
    return _run(args, "attribute", "explain_attribute", method=args.method, noise=args.noise, target=args.target,
                layer=args.layer, timesteps=args.timesteps, label=args.label)


def cmd_class(args) -> int:
    return _run(args, "class-saliency", "explain_class_saliency", timesteps=args.timesteps, label=args.label)


def cmd_kernels(args) -> int:
    return _run(args, "kernels", "explain_kernels", layer=args.layer, label=args.label, t=args.t)


def cmd_emergence(args) -> int:
    return _run(args, "emergence", "explain_emergence", n=args.n)

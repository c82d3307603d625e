"""`difflab edit <noise|denoise|sdedit|inpaint|anagram|hybrid|denoise-ood> RUN ...`: figures from edits.

Each command writes a PNG strip, by default into the run folder (`RUN/edit/<edit>-<input, target, seed>.png`,
never replacing an earlier edit) or to `--out`, and, with `--save-npz FILE`, the raw images (uint8 NHWC)
with their labels, inputs and masks. The input is `--image`, or a test image by class (`--from-class 3`,
`--from-class Sneaker`) or by index (`--from-index 3`; `--from-dataset` is its deprecated old name).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from difflab.cli.options import add_sampler_options, float_list, int_list, number, sampler_settings
from difflab.errors import UserError
from difflab.run.outputs import check_file, guard

COMMANDS = {
    "noise": "the forward process at --t timesteps",
    "denoise": "noisy vs Gaussian blur vs one-step vs iterative denoising",
    "sdedit": "image-to-image (SDEdit) at increasing noise levels",
    "inpaint": "regenerate a masked region (RePaint-style)",
    "anagram": "one image, two readings through a view (visual anagrams)",
    "hybrid": "low frequencies of one class, high of another (hybrid images)",
    "denoise-ood": "a single-step denoiser (--objective denoise) on unseen noise levels",
}
INPUT_COMMANDS = ("noise", "denoise", "sdedit", "inpaint", "denoise-ood")


def levels(text: str) -> tuple:
    """"1,3,5" → strided steps (ints); "0.2,0.5" → fractions of T (any value with a '.')."""
    tokens = [v.strip() for v in text.split(",") if v.strip()]
    try:
        return tuple(float(v) for v in tokens) if any("." in v for v in tokens) else tuple(int(v) for v in tokens)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of steps (1,3,5) or fractions (0.2,0.5)") from None


def register(sub) -> None:
    p = sub.add_parser("edit", help="edit images with a run: SDEdit, inpainting, anagrams, hybrids, denoising")
    edits = p.add_subparsers(dest="edit", required=True, parser_class=type(p))
    for name, help_text in COMMANDS.items():
        e = edits.add_parser(name, help=help_text, description=help_text)
        e.add_argument("run", type=Path, nargs="?", help="run folder (or give --pipeline)")
        e.add_argument("--pipeline", type=Path, metavar="DIR", help="a local diffusers UNet + scheduler folder instead of a run")
        if name in INPUT_COMMANDS:
            source = e.add_mutually_exclusive_group(required=True)
            source.add_argument("--image", type=Path, help="PNG/JPG: gray models get it MNIST-like (a photo of a drawing works), colour models the picture, centre-cropped")
            source.add_argument("--from-class", metavar="C", help="the first test image of class C (an id or a class name)")
            source.add_argument("--from-index", type=number(int), metavar="I", help="test image number I of the run's dataset")
            source.add_argument("--from-dataset", type=number(int), metavar="INDEX",
                                help="deprecated alias of --from-index (an index, not a class)")
        _ADD[name](e)
        e.add_argument("--n", type=number(int), default=None, help="images per setting (default 1; 16 for anagram/hybrid)")
        if name == "denoise-ood":
            e.add_argument("--seed", type=number(int), default=0)
            e.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
        else:
            add_sampler_options(e)
        e.add_argument("--out", type=Path, help=f"PNG strip (default RUN/edit/{name}-<details>.png; ./edit/ for --pipeline)")
        e.add_argument("--save-npz", type=Path, metavar="FILE", help="also save images, labels, inputs, masks")
        e.set_defaults(func=guard(run))


def _add_noise(e) -> None:
    e.add_argument("--t", type=int_list, default=(250, 500, 750), help="timesteps (default 250,500,750)")


def _add_denoise(e) -> None:
    _add_noise(e)
    e.add_argument("--blur-sigma", type=number(float), default=1.0, help="Gaussian blur baseline, pixels (1.0)")


def _add_sdedit(e) -> None:
    e.add_argument("--levels", type=levels, default=(1, 3, 5, 7, 10, 20),
                   help="noise levels: strided steps of --steps (1,3,5,7,10,20) or fractions of T (0.2,0.5)")
    _add_target(e, "class to steer towards (default unconditional)")


def _add_inpaint(e) -> None:
    where = e.add_mutually_exclusive_group(required=True)
    where.add_argument("--mask", type=Path, help="PNG at the model's size, white = regenerate")
    where.add_argument("--box", type=int_list, help="x0,y0,x1,y1: regenerate x0<=x<x1, y0<=y<y1")
    _add_target(e, "class for the new region (default unconditional)")
    e.add_argument("--resample", type=number(int), default=1, help="RePaint harmonisation passes per step (1: none)")


def _add_target(e, what: str) -> None:
    target = e.add_mutually_exclusive_group()
    target.add_argument("--label", type=number(int), help=what)
    target.add_argument("--prompt", metavar="TEXT", help="text runs: the prompt instead of a class, e.g. \"the number seven\"")


def _add_anagram(e) -> None:
    pair = e.add_mutually_exclusive_group(required=True)
    pair.add_argument("--labels", type=int_list, help="two classes, e.g. 6,9: upright, then through the view")
    pair.add_argument("--prompts", nargs="+", metavar="TEXT", help='text runs: two prompts, e.g. "a six","a nine"')
    e.add_argument("--view", default="rot180", help="rot180 | flipv | fliph | transpose | identity (rot180)")


def _add_hybrid(e) -> None:
    e.add_argument("--far", type=number(int), help="class seen from afar (low frequencies)")
    e.add_argument("--near", type=number(int), help="class seen up close (high frequencies)")
    e.add_argument("--prompts", nargs="+", metavar="TEXT", help='text runs: far and near prompts, e.g. "a one","a seven"')
    e.add_argument("--sigma", type=number(float), default=1.5, help="Gaussian low-pass sigma in pixels (1.5; 0 = --far only)")


def _add_ood(e) -> None:
    e.add_argument("--sigmas", type=float_list, default=(0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0), help="noise levels to try")


_ADD = {"noise": _add_noise, "denoise": _add_denoise, "sdedit": _add_sdedit, "inpaint": _add_inpaint,
        "anagram": _add_anagram, "hybrid": _add_hybrid, "denoise-ood": _add_ood}


def run(args) -> int:
    from difflab.edit import commands
    from difflab.interop.pipeline import load_run_or_pipeline

    if args.out is not None:  # checked before the model loads and the edit samples
        args.out = check_file(args.out, "--out", (".png",))
    if args.save_npz:
        args.save_npz = check_file(args.save_npz, "--save-npz", (".npz",))
    loaded = load_run_or_pipeline(args.run, args.pipeline, device=args.device)
    n = args.n if args.n is not None else (16 if args.edit in ("anagram", "hybrid") else 1)
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    if args.out is None:
        args.out = check_file(commands.default_out(loaded, args.edit, _details(args)), "--out", (".png",))
    figure, arrays = _RUN[args.edit](commands, loaded, args, n)
    if args.save_npz:
        commands.save_arrays(args.save_npz, arrays)
    also = f" and {', '.join(arrays)} to {args.save_npz}" if args.save_npz else ""
    print(f"wrote {figure}{also}")
    return 0


def _details(args) -> list[str]:
    """What tells one edit's default file name from another's: its input, target or classes, and seed."""
    parts = []
    if getattr(args, "image", None) is not None:
        parts.append(f"image-{args.image.stem}")
    elif getattr(args, "from_class", None) is not None:
        parts.append(f"class-{args.from_class}")
    elif getattr(args, "from_index", None) is not None or getattr(args, "from_dataset", None) is not None:
        parts.append(f"index-{args.from_index if args.from_index is not None else args.from_dataset}")
    if _target(args) is not None:
        parts.append(f"to-{_target(args)}")
    if args.edit == "anagram":
        parts += [*(args.prompts or [",".join(map(str, args.labels or ()))]), args.view]
    if args.edit == "hybrid":
        parts += [f"far-{args.far}", f"near-{args.near}"] if args.prompts is None else args.prompts
    return [*parts, f"seed{args.seed}"]


def _input(commands, loaded, args, n: int):
    """The input image, once per row: `(n, C, H, W)`."""
    return commands.load_input(loaded, image=args.image, from_dataset=args.from_dataset, from_index=args.from_index,
                               from_class=args.from_class).repeat(n, 1, 1, 1)


def _target(args):
    """The class id, or the prompt, an edit steers towards (None: unconditional)."""
    return args.prompt if getattr(args, "prompt", None) is not None else getattr(args, "label", None)


def _mask(args, size: int):
    from difflab.edit import box_mask, load_mask

    return load_mask(args.mask, size) if args.mask is not None else box_mask(args.box, size)


def _hybrid_pair(commands, args) -> tuple:
    pair = commands.two_prompts(args.prompts, "--prompts")
    if pair is None and (args.far is None or args.near is None):
        raise UserError('hybrid needs --far and --near class ids, or --prompts "FAR","NEAR" on a text run')
    return pair or (args.far, args.near)


# --- one call per command: (commands module, Run, args, n) -> (figure path, npz arrays) ---------------
def _noise(c, run, args, n):
    return c.edit_noise(run, _input(c, run, args, n), t=args.t, out=args.out, seed=args.seed, settings=sampler_settings(args))


def _denoise(c, run, args, n):
    return c.edit_denoise(run, _input(c, run, args, n), t=args.t, blur_sigma=args.blur_sigma, out=args.out,
                          seed=args.seed, settings=sampler_settings(args))


def _sdedit(c, run, args, n):
    return c.edit_sdedit(run, _input(c, run, args, n), levels=args.levels, target=_target(args), out=args.out,
                         seed=args.seed, settings=sampler_settings(args))


def _inpaint(c, run, args, n):
    x = _input(c, run, args, n)
    return c.edit_inpaint(run, x, _mask(args, x.shape[-1]), target=_target(args), resample=args.resample, out=args.out,
                          seed=args.seed, settings=sampler_settings(args))


def _anagram(c, run, args, n):
    pair = c.two_prompts(args.prompts, "--prompts") or tuple(args.labels)
    return c.edit_anagram(run, pair, view=args.view, n=n, out=args.out, seed=args.seed, settings=sampler_settings(args))


def _hybrid(c, run, args, n):
    far, near = _hybrid_pair(c, args)
    return c.edit_hybrid(run, far, near, sigma=args.sigma, n=n, out=args.out, seed=args.seed,
                         settings=sampler_settings(args))


def _denoise_ood(c, run, args, n):
    return c.edit_denoise_ood(run, _input(c, run, args, n), sigmas=args.sigmas, out=args.out, seed=args.seed)


_RUN = {"noise": _noise, "denoise": _denoise, "sdedit": _sdedit, "inpaint": _inpaint, "anagram": _anagram,
        "hybrid": _hybrid, "denoise-ood": _denoise_ood}

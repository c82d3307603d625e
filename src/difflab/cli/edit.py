"""`difflab edit <noise|denoise|sdedit|inpaint|anagram|hybrid|denoise-ood> RUN ...`: figures from edits.

Each command writes a PNG strip (`--out`) and, with `--save-npz FILE`, the raw images (uint8 NHWC)
with their labels, inputs and masks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from difflab.cli.options import add_sampler_options, float_list, int_list, number, sampler_settings
from difflab.errors import UserError
from difflab.training.config import DENOISE

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
            source.add_argument("--image", type=Path, help="PNG/JPG (a photo of a drawing works: made MNIST-like)")
            source.add_argument("--from-dataset", type=number(int), metavar="INDEX", help="a test image of the run's dataset")
        _ADD[name](e)
        e.add_argument("--n", type=number(int), default=None, help="images per setting (default 1; 16 for anagram/hybrid)")
        if name == "denoise-ood":
            e.add_argument("--seed", type=number(int), default=0)
            e.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
        else:
            add_sampler_options(e)
        e.add_argument("--out", type=Path, default=Path(f"edit-{name}.png"), help=f"PNG strip (default edit-{name}.png)")
        e.add_argument("--save-npz", type=Path, metavar="FILE", help="also save images, labels, inputs, masks")
        e.set_defaults(func=run)


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
    from difflab.interop.pipeline import load_run_or_pipeline

    loaded = load_run_or_pipeline(args.run, args.pipeline, device=args.device)
    n = args.n if args.n is not None else (16 if args.edit in ("anagram", "hybrid") else 1)
    if n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    figure, arrays = _RUN[args.edit](loaded, args, n)
    print(f"wrote {figure}")
    if args.save_npz:
        import numpy as np

        np.savez_compressed(args.save_npz, **arrays)
        print(f"wrote {', '.join(arrays)} to {args.save_npz}")
    return 0


def editor(loaded, args):
    """The `Editor` with the command line's sampler settings (edits default to a 20-step schedule)."""
    from difflab.edit import EDIT_STEPS, Editor

    settings = sampler_settings(args)
    settings["steps"] = settings["steps"] or EDIT_STEPS
    return Editor(loaded, **settings)


# --- inputs --------------------------------------------------------------------------------------
def load_input(loaded, args):
    """The input image `(1, C, H, W)` in [-1, 1]: a preprocessed drawing/photo, or a test image."""
    import torch

    from difflab.data import load_dataset
    from difflab.edit import load_drawing

    c, size = loaded.model.config["in_channels"], loaded.model.config["image_size"]
    if args.image is not None:
        return load_drawing(args.image, size=size).expand(1, c, size, size).clone()
    cfg = loaded.config
    data = load_dataset(cfg.dataset, split="test", data_dir=cfg.data_dir, image_size=cfg.image_size)
    if not 0 <= args.from_dataset < len(data):
        raise UserError(f"--from-dataset {args.from_dataset} is out of range; the {cfg.dataset} test split has 0..{len(data) - 1}")
    return data.images[args.from_dataset : args.from_dataset + 1].to(torch.float32)


def _u8(x):
    from difflab.report.images import to_uint8

    return to_uint8(x.flatten(0, x.ndim - 4)).reshape(*x.shape[:-3], *x.shape[-2:], x.shape[-3])


def _tuples(*batches, per_row: int = 4):
    """Interleave `(n, C, H, W)` batches as tuples, `per_row` tuples per row → `(R, k*per_row, C, H, W)`, per_row."""
    import torch

    tuples = torch.stack(batches, dim=1)  # (n, k, C, H, W)
    n, k = tuples.shape[:2]
    cols = min(n, per_row)
    rows = -(-n // cols)
    blank = torch.full((rows * cols - n, k, *tuples.shape[2:]), -1.0)
    return torch.cat([tuples, blank]).reshape(rows, k * cols, *tuples.shape[2:]), cols


# --- one function per command: (Run, args, n) -> (figure path, npz arrays) -------------------------
def _noise(loaded, args, n):
    import torch

    from difflab.edit.figures import save_strip

    x = load_input(loaded, args).repeat(n, 1, 1, 1)
    noisy = editor(loaded, args).noise(x, args.t, seed=args.seed)  # (n, K, C, H, W)
    strip = torch.cat([x[:, None], noisy], dim=1)
    path = save_strip(strip, args.out, columns=["input"] + [f"t = {t}" for t in args.t], title="forward process q(x_t | x_0)")
    return path, {"images": _u8(noisy), "t": list(args.t), "inputs": _u8(x[:1])}


def _denoise(loaded, args, n):
    from difflab.edit.figures import save_strip

    ed = editor(loaded, args)
    x = load_input(loaded, args).repeat(n, 1, 1, 1)
    table = ed.denoise(x, args.t, blur_sigma=args.blur_sigma, seed=args.seed)  # (K, 4, n, C, H, W)
    strip = table.permute(0, 2, 1, 3, 4, 5).flatten(0, 1)  # (K*n, 4, C, H, W)
    columns = ["noisy x_t", f"Gaussian blur σ={args.blur_sigma:g}", "one-step x̂₀", f"iterative ({ed.settings.solver})"]
    rows = [f"t = {t}" for t in args.t for _ in range(n)]
    path = save_strip(strip, args.out, columns=columns, rows=rows, title="denoising")
    return path, {"images": _u8(table), "t": list(args.t), "columns": columns, "inputs": _u8(x[:1])}


def _sdedit(loaded, args, n):
    import torch

    from difflab.edit import level_schedule
    from difflab.edit.figures import save_strip

    ed = editor(loaded, args)
    x = load_input(loaded, args).repeat(n, 1, 1, 1)
    goal = _target(args)
    out = ed.sdedit(x, list(args.levels), label=goal, seed=args.seed)  # (n, L, C, H, W)
    starts = [level_schedule(level, ed.num_timesteps, ed.settings.steps)[0] for level in args.levels]
    columns = ["input"] + [_level_title(lv, t) for lv, t in zip(args.levels, starts)]
    target = "unconditional" if goal is None else f"towards {goal!r}, w={ed.settings.guidance:g}"
    path = save_strip(torch.cat([x[:, None], out], dim=1), args.out, columns=columns, title=f"SDEdit ({target})")
    arrays = {"images": _u8(out), "levels": [float(v) for v in args.levels], "t0": starts, "inputs": _u8(x[:1])}
    return path, arrays | _target_arrays(args, n)


def _target(args):
    """The class id, or the prompt, an edit steers towards (None: unconditional)."""
    return args.prompt if getattr(args, "prompt", None) is not None else args.label


def _target_arrays(args, n: int) -> dict:
    if getattr(args, "prompt", None) is not None:
        return {"prompts": [args.prompt] * n}
    return {"labels": [args.label] * n} if args.label is not None else {}


def _short(target, width: int = 8) -> str:
    """A class id, or a prompt's last word (it usually names the thing) to fit a column title; the
    figure's title keeps the whole prompt."""
    text = str(target)
    return text if len(text) <= width else "…" + text.split()[-1][-width:]


def _two_prompts(values: list[str] | None, flag: str) -> tuple[str, str] | None:
    """`--prompts "a six","a nine"` reaches us as one word "a six,a nine"; two words work too."""
    if values is None:
        return None
    parts = [p.strip() for p in (values[0].split(",") if len(values) == 1 else values)]
    if len(parts) != 2 or not all(parts):
        raise UserError(f'{flag} needs two prompts, like --prompts "a six","a nine"; got {len(parts)}')
    return parts[0], parts[1]


def _level_title(level, t0: int) -> str:
    if isinstance(level, float):
        return f"{level:g} T (t₀={t0})"
    return f"{level} step{'s' if level > 1 else ''} (t₀={t0})"


def _inpaint(loaded, args, n):
    import torch

    from difflab.edit import box_mask, load_mask
    from difflab.edit.figures import save_strip

    ed = editor(loaded, args)
    x = load_input(loaded, args).repeat(n, 1, 1, 1)
    size = x.shape[-1]
    mask = load_mask(args.mask, size) if args.mask is not None else box_mask(args.box, size)
    out = ed.inpaint(x, mask, label=_target(args), resample=args.resample, seed=args.seed)  # (n, C, H, W)
    shown = torch.where(mask, torch.zeros_like(x), x)  # the hole in grey
    strip = torch.stack([x, (mask.float() * 2 - 1).expand_as(x), shown, out], dim=1)
    path = save_strip(strip, args.out, columns=["input", "mask", "kept", "inpainted"], title="inpainting (RePaint-style)")
    arrays = {"images": _u8(out), "inputs": _u8(x[:1]), "masks": mask.numpy()}
    return path, arrays | _target_arrays(args, n)


def _anagram(loaded, args, n):
    from difflab.edit import get_view
    from difflab.edit.figures import save_strip

    ed = editor(loaded, args)
    view = get_view(args.view)
    pair = _two_prompts(args.prompts, "--prompts") or tuple(args.labels)
    if len(pair) != 2:
        raise UserError(f"--labels needs two class ids like 6,9, got {','.join(map(str, pair))}")
    images = ed.anagram(pair, args.view, n=n, seed=args.seed)
    strip, cols = _tuples(images, view.apply(images))
    columns = [f"{_short(pair[0])} upright", f"{_short(pair[1])} ({args.view})"] * cols
    path = save_strip(strip, args.out, columns=columns, title=f"visual anagram {pair[0]} / {pair[1]}")
    key = "prompts" if args.prompts else "labels"
    return path, {"images": _u8(images), "views": _u8(view.apply(images)), key: list(pair)}


def _hybrid(loaded, args, n):
    from difflab.edit.figures import save_strip
    from difflab.edit.filters import shrink

    pair = _two_prompts(args.prompts, "--prompts")
    if pair is None and (args.far is None or args.near is None):
        raise UserError('hybrid needs --far and --near class ids, or --prompts "FAR","NEAR" on a text run')
    far, near = pair or (args.far, args.near)
    images = editor(loaded, args).hybrid(far, near, args.sigma, n=n, seed=args.seed)
    strip, cols = _tuples(images, shrink(images, 2), shrink(images, 3), per_row=3)
    columns = [f"near: {_short(near)}", f"far: {_short(far)} (2× smaller)", "3× smaller"] * cols
    path = save_strip(strip, args.out, columns=columns, title=f"hybrid image, low-pass σ={args.sigma:g}")
    key = "prompts" if pair else "labels"
    return path, {"images": _u8(images), "shrunk": _u8(shrink(images, 2)), key: [far, near]}


def _denoise_ood(loaded, args, n):
    import torch

    from difflab.edit.denoiser import denoise_ood
    from difflab.edit.figures import save_strip

    if loaded.config.objective != DENOISE:
        raise UserError(f"{args.run} was trained with --objective {loaded.config.objective}; "
                        "fix: train one with `difflab train --objective denoise --sigma 0.5`")
    x = load_input(loaded, args).repeat(n, 1, 1, 1)
    table = denoise_ood(loaded.model, x, args.sigmas, generator=torch.Generator().manual_seed(args.seed))  # (S, 2, n, ...)
    strip = table.permute(1, 2, 0, 3, 4, 5).flatten(0, 1)  # (2n, S, C, H, W)
    rows = [kind for kind in ("noisy", "denoised") for _ in range(n)]
    path = save_strip(strip, args.out, columns=[f"σ = {s:g}" for s in args.sigmas], rows=rows,
                      title=f"single-step denoiser trained at σ = {loaded.config.sigma:g}")
    return path, {"images": _u8(table), "sigmas": list(args.sigmas), "inputs": _u8(x[:1])}


_RUN = {"noise": _noise, "denoise": _denoise, "sdedit": _sdedit, "inpaint": _inpaint, "anagram": _anagram,
        "hybrid": _hybrid, "denoise-ood": _denoise_ood}

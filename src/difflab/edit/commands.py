"""The edit commands as functions: a run, an input and options in; a PNG strip and its raw arrays out.

Each `edit_<name>` writes its figure to `out` and returns `(figure path, arrays)`: the images as
uint8 NHWC with their labels/prompts, inputs and masks, ready for `save_arrays` (an .npz).
The `Editor` does the sampling; this module only lays its tensors out as figures.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from difflab.edit.api import EDIT_STEPS, Editor
from difflab.edit.figures import save_strip
from difflab.errors import UserError
from difflab.run import files

Edited = tuple[Path, dict]  # (the PNG strip written, arrays for the .npz)


def make_editor(run, settings: dict) -> Editor:
    """The `Editor` with sampler overrides (`solver`, `steps`, ...); edits default to a 20-step schedule."""
    settings = dict(settings)
    settings["steps"] = settings.get("steps") or EDIT_STEPS
    return Editor(run, **settings)


def load_input(run, *, image: Path | None = None, from_dataset: int | None = None, from_index: int | None = None,
               from_class: int | str | None = None) -> torch.Tensor:
    """The input image `(1, C, H, W)` in [-1, 1]: a preprocessed drawing/photo, or a test image picked by
    class (`from_class`: the first test image of that class id or name) or by index (`from_index`;
    `from_dataset` is its deprecated old name: users read "3" as a class, so both words exist now)."""
    from difflab.edit.preprocess import load_drawing

    c, _, size = run.spec.image_shape
    if image is not None:
        return load_drawing(image, size=size, channels=c)
    data = _test_split(run)
    if from_class is not None:
        index = first_of_class(data, from_class, dataset=run.config.dataset)
    else:
        index, flag = (from_index, "--from-index") if from_index is not None else (from_dataset, "--from-dataset")
        if index is None:
            raise UserError("no input image; fix: give --image FILE, --from-class C or --from-index I")
        if not 0 <= index < len(data):
            raise UserError(f"{flag} {index} is out of range; the {run.config.dataset} test split has 0..{len(data) - 1}")
    return data.images[index : index + 1].to(torch.float32)


def _test_split(run):
    from difflab.data import load_dataset

    cfg = run.config
    if getattr(cfg, "dataset", None) is None:
        raise UserError("--from-class/--from-index need a difflab run (its dataset); fix: give --image FILE")
    return load_dataset(cfg.dataset, split="test", data_dir=cfg.data_dir, image_size=cfg.image_size)


def class_id(value: int | str, names: tuple[str, ...]) -> int:
    """A class id from an id (3, "3") or a class name ("Sneaker", any case)."""
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        k = int(text)
        if not 0 <= k < len(names):
            raise UserError(f"--from-class {text} is out of range; use a class id 0..{len(names) - 1} or a name")
        return k
    lowered = [n.lower() for n in names]
    if text.lower() not in lowered:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise UserError(f"--from-class {text!r} is not a class; use an id 0..{len(names) - 1} or a name ({shown})")
    return lowered.index(text.lower())


def first_of_class(data, value: int | str, *, dataset: str = "dataset's") -> int:
    """The index of the first test image of class `value` (an id or a name)."""
    k = class_id(value, data.class_names)
    hits = (data.labels == k).nonzero().flatten()
    if not len(hits):
        raise UserError(f"the {dataset} test split has no image of class {value}; fix: pick another --from-class")
    return int(hits[0])


def default_out(run, edit: str, details: list[str] | tuple[str, ...] = ()) -> Path:
    """Where an edit's strip goes without `--out`: `RUN/edit/<edit>-<details>.png` (a `--pipeline`, which has
    no run folder: `./edit/`). A name already taken gets `-2`, `-3`, ... so one edit never replaces another."""
    slug = "-".join(re.sub(r"[^A-Za-z0-9=.+_-]+", "_", str(d)).strip("_")[:40] for d in (edit, *details) if str(d))
    folder = getattr(run, "folder", None)
    for n in range(1, 10_000):
        name = f"{slug}.png" if n == 1 else f"{slug}-{n}.png"
        path = folder.sub("edit", name, create=True) if folder is not None else Path("edit") / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            return path
    raise UserError(f"{path.parent} holds 10,000 {slug} edits; fix: give --out FILE")


def save_arrays(path: Path, arrays: dict) -> None:
    """The arrays of an edit as a compressed .npz."""
    import numpy as np

    files.atomic_save(path, lambda out: np.savez_compressed(out, **arrays))


def u8(x: torch.Tensor):
    """`(..., C, H, W)` in [-1, 1] → uint8 `(..., H, W, C)`."""
    from difflab.report.images import to_uint8

    return to_uint8(x.flatten(0, x.ndim - 4)).reshape(*x.shape[:-3], *x.shape[-2:], x.shape[-3])


def tuples(*batches: torch.Tensor, per_row: int = 4) -> tuple[torch.Tensor, int]:
    """Interleave `(n, C, H, W)` batches as tuples, about `per_row` tuples per row → `(R, k*cols, C, H, W)`, cols.

    `cols` divides `n` (the divisor nearest `per_row`), so every cell holds an image: padding the last row
    left blank cells in the figure (16 hybrids at 3 per row)."""
    stacked = torch.stack(batches, dim=1)  # (n, k, C, H, W)
    n, k = stacked.shape[:2]
    cols = min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - per_row), -d))
    return stacked.reshape(n // cols, k * cols, *stacked.shape[2:]), cols


def short(target, width: int = 8) -> str:
    """A class id, or a prompt's last word (it usually names the thing) to fit a column title; the
    figure's title keeps the whole prompt."""
    text = str(target)
    return text if len(text) <= width else "…" + text.split()[-1][-width:]


def two_prompts(values: list[str] | None, flag: str) -> tuple[str, str] | None:
    """`--prompts "a six","a nine"` reaches us as one word "a six,a nine"; two words work too."""
    if values is None:
        return None
    parts = [p.strip() for p in (values[0].split(",") if len(values) == 1 else values)]
    if len(parts) != 2 or not all(parts):
        raise UserError(f'{flag} needs two prompts, like --prompts "a six","a nine"; got {len(parts)}')
    return parts[0], parts[1]


def target_arrays(target, n: int) -> dict:
    """What an edit steered towards, for the .npz: `prompts` (a string target) or `labels` (a class id)."""
    if isinstance(target, str):
        return {"prompts": [target] * n}
    return {"labels": [target] * n} if target is not None else {}


def level_title(level, t0: int) -> str:
    if isinstance(level, float):
        return f"{level:g} T (t₀={t0})"
    return f"{level} step{'s' if level > 1 else ''} (t₀={t0})"


# --- one function per command ------------------------------------------------------------------
def edit_noise(run, x: torch.Tensor, *, t, out: Path, seed: int = 0, settings: dict | None = None) -> Edited:
    """The forward process q(x_t | x_0) at timesteps `t`; `x` `(n, C, H, W)`."""
    noisy = make_editor(run, settings or {}).noise(x, t, seed=seed)  # (n, K, C, H, W)
    strip = torch.cat([x[:, None], noisy], dim=1)
    path = save_strip(strip, out, columns=["input"] + [f"t = {v}" for v in t], title="forward process q(x_t | x_0)")
    return path, {"images": u8(noisy), "t": list(t), "inputs": u8(x[:1])}


def edit_denoise(run, x: torch.Tensor, *, t, blur_sigma: float, out: Path, seed: int = 0,
                 settings: dict | None = None) -> Edited:
    """Noisy vs Gaussian blur vs one-step vs iterative denoising, one block of rows per timestep."""
    ed = make_editor(run, settings or {})
    n = len(x)
    table = ed.denoise(x, t, blur_sigma=blur_sigma, seed=seed)  # (K, 4, n, C, H, W)
    strip = table.permute(0, 2, 1, 3, 4, 5).flatten(0, 1)  # (K*n, 4, C, H, W)
    columns = ["noisy x_t", f"Gaussian blur σ={blur_sigma:g}", "one-step x̂₀", f"iterative ({ed.sampler.solver})"]
    rows = [f"t = {v}" for v in t for _ in range(n)]
    path = save_strip(strip, out, columns=columns, rows=rows, title="denoising")
    return path, {"images": u8(table), "t": list(t), "columns": columns, "inputs": u8(x[:1])}


def edit_sdedit(run, x: torch.Tensor, *, levels, target=None, out: Path, seed: int = 0,
                settings: dict | None = None) -> Edited:
    """SDEdit at increasing noise levels, unconditional or towards `target` (class id or prompt)."""
    from difflab.edit.sdedit import level_schedule

    ed = make_editor(run, settings or {})
    edited = ed.sdedit(x, list(levels), label=target, seed=seed)  # (n, L, C, H, W)
    starts = [level_schedule(level, ed.num_timesteps, ed.sampler.steps)[0] for level in levels]
    columns = ["input"] + [level_title(lv, t0) for lv, t0 in zip(levels, starts)]
    towards = "unconditional" if target is None else f"towards {target!r}, w={ed.sampler.guidance:g}"
    path = save_strip(torch.cat([x[:, None], edited], dim=1), out, columns=columns, title=f"SDEdit ({towards})")
    arrays = {"images": u8(edited), "levels": [float(v) for v in levels], "t0": starts, "inputs": u8(x[:1])}
    return path, arrays | target_arrays(target, len(x))


def edit_inpaint(run, x: torch.Tensor, mask: torch.Tensor, *, target=None, resample: int = 1, out: Path,
                 seed: int = 0, settings: dict | None = None) -> Edited:
    """Regenerate the `mask` region (True) RePaint-style; input, mask, kept pixels and result side by side."""
    edited = make_editor(run, settings or {}).inpaint(x, mask, label=target, resample=resample, seed=seed)  # (n, C, H, W)
    shown = torch.where(mask, torch.zeros_like(x), x)  # the hole in grey
    strip = torch.stack([x, (mask.float() * 2 - 1).expand_as(x), shown, edited], dim=1)
    path = save_strip(strip, out, columns=["input", "mask", "kept", "inpainted"], title="inpainting (RePaint-style)")
    arrays = {"images": u8(edited), "inputs": u8(x[:1]), "masks": mask.numpy()}
    return path, arrays | target_arrays(target, len(x))


def edit_anagram(run, pair: tuple, *, view: str, n: int, out: Path, seed: int = 0,
                 settings: dict | None = None) -> Edited:
    """Visual anagrams: `n` images reading as `pair[0]` upright and `pair[1]` through `view`."""
    from difflab.edit.views import get_view

    v = get_view(view)
    if len(pair) != 2:
        raise UserError(f"--labels needs two class ids like 6,9, got {','.join(map(str, pair))}")
    images = make_editor(run, settings or {}).anagram(pair, view, n=n, seed=seed)
    strip, cols = tuples(images, v.apply(images))
    columns = [f"{short(pair[0])} upright", f"{short(pair[1])} ({view})"] * cols
    path = save_strip(strip, out, columns=columns, title=f"visual anagram {pair[0]} / {pair[1]}")
    key = "prompts" if isinstance(pair[0], str) else "labels"
    return path, {"images": u8(images), "views": u8(v.apply(images)), key: list(pair)}


def edit_hybrid(run, far, near, *, sigma: float, n: int, out: Path, seed: int = 0,
                settings: dict | None = None) -> Edited:
    """Hybrid images: low frequencies of `far`, high of `near`, shown at 1x, 2x and 3x smaller."""
    from difflab.edit.filters import shrink

    images = make_editor(run, settings or {}).hybrid(far, near, sigma, n=n, seed=seed)
    strip, cols = tuples(images, shrink(images, 2), shrink(images, 3), per_row=3)
    columns = [f"near: {short(near)}", f"far: {short(far)} (2× smaller)", "3× smaller"] * cols
    path = save_strip(strip, out, columns=columns, title=f"hybrid image, low-pass σ={sigma:g}")
    key = "prompts" if isinstance(far, str) else "labels"
    return path, {"images": u8(images), "shrunk": u8(shrink(images, 2)), key: [far, near]}


def edit_denoise_ood(run, x: torch.Tensor, *, sigmas, out: Path, seed: int = 0) -> Edited:
    """A single-step denoiser (`--objective denoise`) on noise levels it never saw."""
    from difflab.edit.denoiser import denoise_ood
    from difflab.training.config import DENOISE

    if run.spec.prediction != DENOISE:
        raise UserError(f"{run.path} was trained with --objective {run.spec.prediction}; "
                        "fix: train one with `difflab train --objective denoise --sigma 0.5`")
    n = len(x)
    table = denoise_ood(run.model, x, sigmas, generator=torch.Generator().manual_seed(seed))  # (S, 2, n, ...)
    strip = table.permute(1, 2, 0, 3, 4, 5).flatten(0, 1)  # (2n, S, C, H, W)
    rows = [kind for kind in ("noisy", "denoised") for _ in range(n)]
    path = save_strip(strip, out, columns=[f"σ = {s:g}" for s in sigmas], rows=rows,
                      title=f"single-step denoiser trained at σ = {run.config.sigma:g}")
    return path, {"images": u8(table), "sigmas": list(sigmas), "inputs": u8(x[:1])}


__all__ = ["class_id", "default_out", "edit_anagram", "edit_denoise", "edit_denoise_ood", "edit_hybrid", "edit_inpaint", "edit_noise",
           "edit_sdedit", "load_input", "make_editor", "save_arrays"]

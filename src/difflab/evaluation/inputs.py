"""Images from any generator, for `difflab evaluate --images`: an `.npz` or an image folder.

- `.npz` as `difflab sample --save-npz` writes it: `images` uint8 `(N, H, W[, C])`, optional `labels`
  (class ids; -1 for unconditional);
- a folder `DIR/<class name>/*.png` (labelled; class names must be the dataset's), or a flat folder of
  images (no labels: only label-free metrics are computed).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from difflab.data.dataset import from_uint8
from difflab.errors import UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def load_images(path: str | Path, class_names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images `(N, C, H, W)` in [-1, 1] and labels `(N,)` (None when the source has none)."""
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".npz":
        return _load_npz(path, class_names)
    if path.is_dir():
        return _load_folder(path, class_names)
    raise UserError(f"--images {path}: not an .npz file or a folder; fix: pass `difflab sample --save-npz` output "
                    "or a folder of PNGs")


def _load_npz(path: Path, class_names: tuple[str, ...]):
    try:
        archive = np.load(path, allow_pickle=False)
        if isinstance(archive, np.ndarray):  # np.load reads a bare .npy too: not what --save-npz writes
            raise ValueError("a single .npy array, not an archive of named arrays")
        with archive as f:
            if "images" not in f:
                raise UserError(f"{path}: no 'images' array (found {', '.join(f.files) or 'none'}); fix: save uint8 "
                                "images (N, H, W[, C]) under the key 'images'")
            pixels, labels = f["images"], f.get("labels")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:  # truncated, not a zip, pickled objects
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path}: not a readable .npz of arrays ({first}); fix: write it with numpy.savez(path, "
                        "images=uint8 (N, H, W[, C]), labels=int (N,)), as `difflab sample --save-npz` does") from None
    if pixels.dtype != np.uint8:
        raise UserError(f"{path}: images must be uint8 0..255, got {pixels.dtype}; fix: convert with "
                        "((x + 1) * 127.5).round().astype('uint8')")
    if pixels.ndim and not len(pixels):
        raise UserError(f"{path}: holds 0 images; fix: evaluate at least 20 (distribution metrics need a sample)")
    if pixels.ndim == 4 and pixels.shape[1] in (1, 3, 4) and pixels.shape[-1] not in (1, 3, 4):
        raise UserError(f"{path}: images of shape {pixels.shape} look channels-first (N, C, H, W); fix: save them "
                        "channels-last, np.transpose(images, (0, 2, 3, 1))")
    if labels is not None and (labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer)):
        raise UserError(f"{path}: labels must be integer class ids of shape (N,), got {labels.dtype} "
                        f"{labels.shape}; fix: labels.astype('int64').reshape(-1)")
    if labels is None or (labels < 0).all():
        labels = None
    elif labels.min() < 0 or labels.max() >= len(class_names) or len(labels) != len(pixels):
        raise UserError(f"{path}: labels must be {len(pixels)} class ids in 0..{len(class_names) - 1} (one per image), "
                        f"got {len(labels)} in {labels.min()}..{labels.max()}; fix: the class ids of the dataset the "
                        "images imitate (--dataset), or -1 for unconditional images")
    data = from_uint8(pixels, labels if labels is not None else np.zeros(len(pixels)), class_names, path.name)
    return data.images, (data.labels if labels is not None else None)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _load_folder(root: Path, class_names: tuple[str, ...]):
    subfolders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subfolders:
        files, labels = _images_in(root), None
    else:
        unknown = [p.name for p in subfolders if p.name not in class_names]
        if unknown:
            raise UserError(f"{root}: sub-folder {unknown[0]!r} is not a class of the dataset "
                            f"({', '.join(class_names)}); fix: name sub-folders by class")
        per_class = [(class_names.index(p.name), _images_in(p)) for p in subfolders]
        files = [f for _, fs in per_class for f in fs]
        labels = torch.tensor([c for c, fs in per_class for _ in fs], dtype=torch.long)
    if not files:
        raise UserError(f"{root}: no images found; fix: put PNG files in it (or in one sub-folder per class)")
    try:
        pixels = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])  # (N, H, W, 3)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"{root}: cannot read the images as one stack ({err}); fix: same-size image files only") from None
    if (pixels == pixels[..., :1]).all():
        pixels = pixels[..., :1]  # gray images stay one channel
    data = from_uint8(pixels, np.zeros(len(files)), class_names, root.name)
    return data.images, labels

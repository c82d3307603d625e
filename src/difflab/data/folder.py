"""Image folders: `root/<class>/<image>`, the layout most small image datasets come in.

Class names are the sub-folder names, sorted. Every image Pillow reads is accepted and brought to one
mode and one size, so a folder mixing PNG and JPEG, or grayscale and colour, still loads:

- mode: grayscale "L" if every image is grayscale (modes 1, L, LA, I, I;16, F), else "RGB"; transparent
  pixels (RGBA, LA, palette transparency) are laid over white, as the emoji set is, not left as whatever
  colour they store (often black); 16-bit samples (16-bit PNG/TIFF) are scaled to 8 bits (x 255/65535), not clipped;
- size: square, `image_size` x `image_size` when given, else the shorter side of the most common size (the
  first image's on a tie) up to `DEFAULT_MAX_SIDE` (a folder of 500 x 375 photos trains at 64 px, not at a
  size no CPU trains; `image_size` goes higher). Each image is centre-cropped to a square and resized
  with Lanczos, so nothing is stretched;
- EXIF orientation (phone photos) is applied first.

A top-level `metadata.jsonl` (Hugging Face image-folder layout: one JSON object per line with `file_name`,
relative to the folder, and `text`) gives every image a caption for `--conditioning text`; with it, the
images may also lie directly in the folder (one class). Hidden files (".*") are ignored; anything else unexpected (a stray file, an empty folder, a file that is not an image) is a
`UserError` naming the file, so a dataset never loads with silently missing or garbled images.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from difflab.data.dataset import ImageDataset, from_uint8
from difflab.errors import UserError

GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"}
SIXTEEN_BIT_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}  # how Pillow reads 16-bit PNG/TIFF
IGNORED_TOP_LEVEL = {"metadata.jsonl"}
EXIF_ORIENTATION = 0x0112
ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF values that swap width and height
DEFAULT_MAX_SIDE = 64  # px: the largest side a folder trains at unless `image_size` says otherwise (the "64px" recipe)
BACKGROUND = 255  # what transparent pixels are laid over: white


def load_image_folder(path: str | Path, *, image_size: int | None = None) -> ImageDataset:
    """All images under `path/<class>/`, `(N, C, H, W)` in [-1, 1] with C = 1 (gray) or 3 (RGB)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise UserError(f"{root}: not a directory; fix: pass folder:PATH where PATH holds one sub-folder of "
                        "images per class")
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise UserError(f"image_size must be a positive integer, got {image_size!r}")
    classes = _class_folders(root)
    files, labels = [], []
    for label, folder in enumerate(classes):
        class_files = _image_files(folder)
        files += class_files
        labels += [label] * len(class_files)
    probes = [_probe(f) for f in files]  # headers only: cheap, and every bad file is found up front
    mode = "L" if all(m in GRAY_MODES for m, _ in probes) else "RGB"
    side = image_size or default_side([s for _, s in probes])
    pixels = np.stack([_load(f, mode, side) for f in files])  # (N, S, S) or (N, S, S, 3)
    captions = read_captions(root, files)
    return from_uint8(pixels, labels, tuple(c.name for c in classes), root.name or "folder", captions)


def default_side(sizes: list[tuple[int, int]]) -> int:
    """The side a folder trains at when the user gave none: the most common size's shorter side, capped, and
    rounded down to a multiple of 4 (up to 32 px) or 8 (above), which a U-Net's 3 or 4 halvings need."""
    width, height = Counter(sizes).most_common(1)[0][0]
    side = min(width, height, DEFAULT_MAX_SIDE)
    return side - side % (4 if side <= 32 else 8) or side


def read_captions(root: Path, files: list[Path]) -> tuple[str, ...] | None:
    """Each image's `text` from `root/metadata.jsonl`; None when there is no such file or no `text` column."""
    path = root / "metadata.jsonl"
    if not path.is_file():
        return None
    texts: dict[str, str] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path} line {number}: not JSON ({err.msg}); fix: one JSON object per line") from None
        if not isinstance(row, dict) or "text" not in row:
            continue  # other columns (labels, sampler settings) are not ours to check
        if not isinstance(row.get("file_name"), str):
            raise UserError(f"{path} line {number}: a caption needs a \"file_name\" string; fix: "
                            '{"file_name": "cats/0001.png", "text": "a photo of a cat"}')
        if not isinstance(row["text"], str):
            raise UserError(f"{path} line {number}: \"text\" must be a string, got {type(row['text']).__name__}")
        texts[Path(row["file_name"]).as_posix()] = row["text"]
    if not texts:
        return None
    names = [f.relative_to(root).as_posix() for f in files]
    lacking = [n for n in names if n not in texts]
    if lacking:
        raise UserError(f"{path}: no \"text\" for {lacking[0]} ({len(lacking)} image(s) without a caption); "
                        "fix: add a line for every image, or remove the text column")
    return tuple(texts[n] for n in names)


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _class_folders(root: Path) -> list[Path]:
    entries = [p for p in _visible(root) if p.name not in IGNORED_TOP_LEVEL]
    if (root / "metadata.jsonl").is_file() and entries and not any(p.is_dir() for p in entries):
        return [root]  # Hugging Face flat layout: images beside metadata.jsonl, one class
    stray = [p for p in entries if not p.is_dir()]
    if stray:
        raise UserError(f"{stray[0]}: a file at the top of the dataset folder, where only class sub-folders "
                        "belong; fix: move it into its class folder or remove it")
    if not entries:
        raise UserError(f"{root}: no class sub-folders; fix: put each class's images in its own sub-folder, "
                        f"e.g. {root / 'cats' / '0001.png'}")
    return entries


def _image_files(folder: Path) -> list[Path]:
    files = [p for p in _visible(folder) if p.name not in IGNORED_TOP_LEVEL]
    nested = [p for p in files if p.is_dir()]
    if nested:
        raise UserError(f"{nested[0]}: a folder inside class folder {folder.name!r}; fix: move its images up "
                        f"into {folder} or remove it")
    if not files:
        raise UserError(f"{folder}: empty class folder; fix: add images to it or remove it")
    return files


@contextmanager
def _pillow_errors(path: Path):
    """Turn whatever Pillow raises for a bad file into one `UserError` that names the file."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise UserError(f"{path}: too many pixels for a dataset image ({err}); fix: downscale it or "
                            "remove it") from None
        except PermissionError:
            raise UserError(f"{path}: not readable (permission denied); fix: `chmod a+r` it or remove it from "
                            "the class folder") from None
        except UnidentifiedImageError:
            raise UserError(f"{path}: not an image Pillow can read; fix: remove it from the class folder or "
                            "convert it to PNG") from None
        except (OSError, SyntaxError, ValueError, EOFError) as err:  # truncated or corrupt image data
            raise UserError(f"{path}: damaged image ({type(err).__name__}: {err}); fix: remove it or replace "
                            "it with a good copy") from None


def _probe(path: Path) -> tuple[str, tuple[int, int]]:
    """`(mode, (width, height))` after EXIF orientation, from the header alone."""
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file (0 bytes); fix: remove it or replace it with the image")
    with _pillow_errors(path), Image.open(path) as img:
        width, height = img.size
        if img.getexif().get(EXIF_ORIENTATION) in ROTATED_ORIENTATIONS:
            width, height = height, width
        return img.mode, (width, height)


def _load(path: Path, mode: str, side: int) -> np.ndarray:
    """Pixels `(side, side)` for mode "L" or `(side, side, 3)` for "RGB", uint8: centre-cropped to a square,
    resized, transparency over white."""
    with _pillow_errors(path), Image.open(path) as opened:
        img = ImageOps.exif_transpose(opened)
        if img.mode in SIXTEEN_BIT_MODES:
            wide = np.asarray(img).astype(np.float32)  # (H, W) 0..65535
            img = Image.fromarray(np.rint(np.clip(wide, 0, 65535) * (255 / 65535)).astype(np.uint8))
            clear = opened.info.get("transparency")
            if isinstance(clear, int):  # the transparent sample value, lost by fromarray: an alpha channel instead
                img = Image.merge("LA", (img, Image.fromarray(((wide != clear) * 255).astype(np.uint8))))
        img = _over_white(img).convert(mode)
        if img.size != (side, side):
            img = ImageOps.fit(img, (side, side), Image.Resampling.LANCZOS)  # centre crop, then resize
        return np.asarray(img)


def _over_white(img: Image.Image) -> Image.Image:
    """`img` with any transparency laid over white (RGBA, LA, or a palette/RGB image with a transparent colour)."""
    if img.mode == "P" or "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode not in ("RGBA", "LA", "RGBa", "PA"):
        return img
    rgba = img.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (BACKGROUND,) * 3 + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")

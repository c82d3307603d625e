"""Generated images as an image folder: `DIR/<class name>/<i>.png` plus `DIR/metadata.jsonl`.

The layout other tools read as it is:
- `datasets.load_dataset("imagefolder", data_dir=DIR)`: one row per image with `label`, `class_name`
  and the sampler settings from `metadata.jsonl` (its `file_name` column is relative to DIR);
- torch-fidelity: `fidelity.calculate_metrics(input1=DIR, samples_find_deep=True, ...)` (its default
  only looks at DIR's top level; the images live one level down).
Unconditional images go to `DIR/unconditional/`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image

from difflab.errors import UserError
from difflab.report.images import to_uint8
from difflab.run import files

UNCONDITIONAL = "unconditional"
PROMPTED = "prompted"  # images drawn from prompts rather than class ids
METADATA = "metadata.jsonl"  # one line per PNG written, in order


def check_new_folder(out: str | Path) -> None:
    """Refuse a folder that already holds generated images (before any sampling starts)."""
    if (Path(out) / METADATA).exists():
        raise UserError(f"{out} already holds generated images; fix: give a new --out-dir")


class ImageFolderWriter:
    """Appends chunks of images to `out`: each chunk's PNGs first, then its metadata lines (flushed).

    Why: `difflab sample --n 10000` writes as it generates, and an interrupted run keeps every image
    it finished; `metadata.jsonl` only ever lists PNGs that are on disk (its line count = `written`).
    """

    def __init__(self, out: str | Path, class_names, *, info: dict | None = None) -> None:
        self.out, self.class_names, self.info, self.written = Path(out), class_names, info or {}, 0
        check_new_folder(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self._metadata = open(self.out / METADATA, "x")  # noqa: SIM115 - open until close(); "x": never append to another run's file

    def write(self, images: torch.Tensor, labels: torch.Tensor | None, texts: list[str] | None = None) -> None:
        """Save `(b, C, H, W)` images in [-1, 1] one PNG each, numbered on from the previous chunk.

        `texts`: the prompt of each image (text runs), kept as the `text` column, so the folder loads
        back as a captioned dataset (`--dataset folder:DIR --conditioning text`)."""
        rows = []
        for k, array in enumerate(to_uint8(images)):  # (H, W, C)
            i = self.written + k
            label = int(labels[k]) if labels is not None else None
            folder = _folder_name(self.class_names[label]) if label is not None else (PROMPTED if texts else UNCONDITIONAL)
            name = f"{folder}/{i:05d}.png"
            (self.out / folder).mkdir(exist_ok=True)
            image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
            files.atomic_save(self.out / name, lambda out, image=image: image.save(out, format="PNG"))  # whole or absent
            text = {"text": texts[k]} if texts else {}
            rows.append({"file_name": name, "label": label, "class_name": folder, "index": i, **text, **self.info})
        self._metadata.write("".join(json.dumps(r) + "\n" for r in rows))
        self._metadata.flush()
        self.written += len(rows)

    def close(self) -> None:
        self._metadata.close()

    def __enter__(self) -> ImageFolderWriter:
        return self

    def __exit__(self, *_) -> None:
        self.close()


def write_image_folder(images: torch.Tensor, labels: torch.Tensor | None, class_names, out: str | Path,
                       *, info: dict | None = None) -> Path:
    """Save `(N, C, H, W)` images in [-1, 1] one PNG each; `info` (seed, solver, ...) goes on every row."""
    with ImageFolderWriter(out, class_names, info=info) as writer:
        writer.write(images, labels)
    return Path(out)


def _folder_name(name: str) -> str:
    """Class names as folder names: path separators and leading dots would break the layout."""
    safe = str(name).replace("/", "_").replace("\\", "_").strip() or "_"
    return "_" + safe if safe.startswith(".") else safe

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

UNCONDITIONAL = "unconditional"


def write_image_folder(images: torch.Tensor, labels: torch.Tensor | None, class_names, out: str | Path,
                       *, info: dict | None = None) -> Path:
    """Save `(N, C, H, W)` images in [-1, 1] one PNG each; `info` (seed, solver, ...) goes on every row."""
    out = Path(out)
    if (out / "metadata.jsonl").exists():
        raise UserError(f"{out} already holds generated images; fix: give a new --out-dir")
    pixels = to_uint8(images)  # (N, H, W, C)
    rows = []
    for i, array in enumerate(pixels):
        label = int(labels[i]) if labels is not None else None
        folder = _folder_name(class_names[label]) if label is not None else UNCONDITIONAL
        name = f"{folder}/{i:05d}.png"
        (out / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(out / name)
        rows.append({"file_name": name, "label": label, "class_name": folder, "index": i, **(info or {})})
    (out / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def _folder_name(name: str) -> str:
    """Class names as folder names: path separators and leading dots would break the layout."""
    safe = str(name).replace("/", "_").replace("\\", "_").strip() or "_"
    return "_" + safe if safe.startswith(".") else safe

"""Dataset names → loaders. `load_dataset("mnist5k")` is the one entry point.

Every source returns an `ImageDataset` for a split: "train" or "test". Sources without official
splits (mnist5k, emoji, image folders) are split per class with a fixed seed (10% held out), so the judge
and the memorisation metrics always have images the diffusion model never saw.
"""

from __future__ import annotations

from pathlib import Path

from difflab.data.dataset import ImageDataset
from difflab.errors import UserError

SPLITS = ("train", "test")
HELD_OUT_FRACTION = 0.1  # of sources without an official test split
IDX_SOURCES = ("mnist", "fashion-mnist", "kmnist", "emnist-digits", "emnist-letters")
NAMES = ("mnist5k", *IDX_SOURCES, "cifar10", "emoji[:subgroup][:N]", "folder:PATH")


def load_dataset(
    spec: str,
    *,
    split: str = "train",
    data_dir: str | Path | None = None,
    download: bool = True,
    image_size: int | None = None,
) -> ImageDataset:
    """Load `spec` ("mnist5k", "mnist", "fashion-mnist", "kmnist", "cifar10", "emoji", "folder:PATH").

    "emoji" (data/emoji.py) is rendered from Debian's emoji font: 32 px unless `image_size` says otherwise;
    "emoji:subgroup" labels by subgroup, "emoji:N" keeps at most N emoji per class."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return _not_empty(_load(spec, split, data_dir, download, image_size), spec, split)


def check_options(spec: str, *, data_dir=None, image_size: int | None = None) -> None:
    """Refuse `--data-dir` / `--image-size` where `spec` would ignore them: a run must not train on other data
    than its config.json says (mnist5k at 28 px, say, while config.json records 3 px)."""
    resizable = spec == "emoji" or spec.startswith(("emoji:", "folder:"))
    if image_size is not None and not resizable:
        raise UserError(f"--image-size {image_size} resizes only emoji and folder:PATH datasets; {spec} keeps its "
                        "own size; fix: drop --image-size (or use a folder of images)")
    if data_dir is not None and not (spec in IDX_SOURCES or spec == "cifar10"):
        where = ("ships inside difflab" if spec == "mnist5k" else "reads its images from PATH" if spec.startswith("folder:")
                 else "is rendered from the installed emoji font" if spec.startswith("emoji") else "takes no data folder")
        raise UserError(f"--data-dir {data_dir} is not read for {spec}, which {where}; fix: drop --data-dir")


def _load(spec: str, split: str, data_dir, download: bool, image_size: int | None) -> ImageDataset:
    if spec == "mnist5k":
        from difflab.data.embedded import load_mnist5k

        return _held_out_split(load_mnist5k(), split)
    if spec in IDX_SOURCES:
        from difflab.data.idx import load_idx_dataset

        return load_idx_dataset(spec, split=split, data_dir=data_dir, download=download)
    if spec == "cifar10":
        from difflab.data.cifar import load_cifar10

        return load_cifar10(split=split, data_dir=data_dir, download=download)
    if spec == "emoji" or spec.startswith("emoji:"):
        from difflab.data.emoji import load_emoji_spec

        return _held_out_split(load_emoji_spec(spec, image_size=image_size), split)
    if spec.startswith("folder:"):
        from difflab.data.folder import load_image_folder

        return _held_out_split(load_image_folder(spec[len("folder:"):], image_size=image_size), split)
    raise UserError(f"unknown dataset {spec!r}; use one of {', '.join(NAMES)}")


def _not_empty(dataset: ImageDataset, spec: str, split: str) -> ImageDataset:
    """Refuse a split without images here, where the data enters: an empty one would train (or judge) nothing
    and fail minutes later, deep inside the loop."""
    if len(dataset):
        return dataset
    if split == "train":
        raise UserError(f"{spec}: the train split holds no images (zero items); fix: point at a dataset with images")
    raise UserError(f"{spec}: the held-out (test) split holds no images ({HELD_OUT_FRACTION:.0%} of each class is "
                    "held out, so a class needs 6 or more images to give one); fix: add images to each class")


def _held_out_split(dataset: ImageDataset, split: str) -> ImageDataset:
    train, test = dataset.split(HELD_OUT_FRACTION, seed=0)
    return train if split == "train" else test

"""What a dataset's images are called in reports, captions and plots: "digits" only for digit sets.

Kept beside the data so a new source names its pictures where it is added (`sources.py`).
"""

from __future__ import annotations

NOUNS = {  # source name -> (one, many)
    "mnist5k": ("digit", "digits"), "mnist": ("digit", "digits"), "emnist-digits": ("digit", "digits"),
    "fashion-mnist": ("garment", "garments"), "kmnist": ("character", "characters"),
    "emnist-letters": ("letter", "letters"), "emoji": ("emoji", "emoji"), "cifar10": ("image", "images"),
}
DEFAULT = ("image", "images")  # folders, and any source not named above


def noun(dataset: str | None, *, singular: bool = False) -> str:
    """"digits", "garments", "emoji", "images", ... for a dataset spec ("emoji:subgroup:50", "folder:PATH")."""
    source = (dataset or "").split(":", 1)[0].removesuffix("-train").removesuffix("-test")
    one, many = NOUNS.get(source, DEFAULT)
    return one if singular else many


__all__ = ["NOUNS", "noun"]

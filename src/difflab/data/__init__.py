"""Data: every source becomes one in-memory `ImageDataset` with images in [-1, 1]."""

from difflab.data.dataset import ImageDataset, from_uint8
from difflab.data.sources import NAMES, load_dataset

__all__ = ["NAMES", "ImageDataset", "from_uint8", "load_dataset"]

"""difflab: train, sample, edit, evaluate and explain diffusion models on small image datasets."""

from difflab.api import evaluate_run, load_run, train
from difflab.data import ImageDataset, load_dataset
from difflab.errors import UserError
from difflab.run import Run
from difflab.training.config import TrainConfig

__version__ = "0.1.0"
__all__ = ["ImageDataset", "Run", "TrainConfig", "UserError", "evaluate_run", "load_dataset", "load_run", "train"]

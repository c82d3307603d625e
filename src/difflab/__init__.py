"""difflab: train, sample, edit, evaluate and explain diffusion models on small image datasets."""

from difflab.api import judge_run, load_run, train
from difflab.data import ImageDataset, load_dataset
from difflab.errors import UserError
from difflab.run import Run
from difflab.training.config import TrainConfig

__version__ = "0.1.0"


def __getattr__(name: str):
    """`difflab.evaluate_run`: the evaluation suite, imported when first used (it loads scipy)."""
    if name == "evaluate_run":
        from difflab.evaluation.suite import evaluate_run

        return evaluate_run
    raise AttributeError(f"module 'difflab' has no attribute {name!r}")


__all__ = ["ImageDataset", "Run", "TrainConfig", "UserError", "evaluate_run", "judge_run", "load_dataset", "load_run",
           "train"]

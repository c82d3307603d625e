"""Sampling: the one `Sampler` (solver, steps, guidance, precision, seed) and the `Condition` it samples for."""

from difflab.sampling.condition import Condition, class_labels, null_of
from difflab.sampling.sampler import Sampler

__all__ = ["Condition", "Sampler", "class_labels", "null_of"]

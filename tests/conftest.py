"""Suite-wide fixtures: an isolated difflab cache, and a tiny training configuration."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

from difflab.training.config import TrainConfig

torch.set_num_threads(min(2, torch.get_num_threads()))

# Judges and downloads go to one cache per test session (CI sets its own fresh one).
os.environ.setdefault("DIFFLAB_CACHE", tempfile.mkdtemp(prefix="difflab-test-cache-"))


@pytest.fixture
def tiny_config() -> TrainConfig:
    """A model small enough to train 20 steps in a second or two."""
    return TrainConfig(channels=(8, 16), batch_size=16, steps=20, minutes=None, log_every=5, warmup_steps=5,
                       num_sample_grids=1, sample_steps=4, checkpoint_minutes=100.0)

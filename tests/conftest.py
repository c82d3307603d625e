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


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny class-conditional run folder (60 steps, seconds to train), shared by the whole session.

    Read it; never write into it (copy it with shutil.copytree first if a test must)."""
    import difflab

    config = TrainConfig(channels=(8, 16), batch_size=32, steps=60, minutes=None, log_every=10, warmup_steps=10,
                         num_sample_grids=0, sample_steps=4, checkpoint_minutes=100.0)
    return difflab.train(config, out=tmp_path_factory.mktemp("tiny") / "run", progress=False, evaluate=False)


@pytest.fixture(scope="session")
def mnist_judge():
    """The mnist5k judge (trained once per test session, ~35 s on 2 cores, then cached)."""
    from difflab.evaluation import load_judge

    return load_judge("mnist5k", verbose=False)


@pytest.fixture(scope="session")
def text_run(tmp_path_factory):
    """A tiny text-conditional run (60 steps on mnist5k class captions, MiniLM prompts), shared by the session."""
    import difflab

    config = TrainConfig(channels=(8, 16), batch_size=32, steps=60, minutes=None, log_every=10, warmup_steps=10,
                         num_sample_grids=0, sample_steps=4, checkpoint_minutes=100.0, conditioning="text")
    return difflab.train(config, out=tmp_path_factory.mktemp("text") / "run", progress=False, evaluate=False)

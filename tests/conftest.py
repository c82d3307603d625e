"""Suite-wide fixtures (an isolated difflab cache, a tiny training configuration) and the fast tier.

The fast tier, `pytest -m "not slow"`, checks every module's contract on tiny tensors in under a minute.
A test is marked `slow` here, automatically, when it or any fixture it uses trains a model, trains or
loads a judge, starts a process or runs a whole CLI command — so a new test lands in the right tier
without anyone remembering to mark it.
"""

from __future__ import annotations

import atexit
import inspect
import os
import re
import shutil
import tempfile

import pytest
import torch

from difflab.training.config import TrainConfig

torch.set_num_threads(min(2, torch.get_num_threads()))
os.environ.setdefault("DIFFLAB_THREADS", "off")  # tests compare runs bitwise: no thread governor (tests/training/test_threads.py covers it)

SLOW_CALL = re.compile(r"difflab\.train\(|api\.train\(|\btrain_here\(|Trainer\(|\bdistill\(|load_judge\(|judge_run\(|"
                       r"evaluate_run\(|subprocess|multiprocessing|\bmain\(\[|_cli\(|\bcli\(|run_cli|Popen|sweep\.run|run_sweep|"
                       r"server\.start\(|os\.kill\(")


def _source(fn) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return ""


def _is_slow(item) -> bool:
    if SLOW_CALL.search(_source(getattr(item, "function", None))):
        return True
    info = getattr(item, "_fixtureinfo", None)
    for defs in (info.name2fixturedefs.values() if info else ()):
        if any(SLOW_CALL.search(_source(d.func)) for d in defs):
            return True
    return False


def pytest_collection_modifyitems(config, items):
    slow = pytest.mark.slow
    for item in items:
        if "slow" not in item.keywords and _is_slow(item):
            item.add_marker(slow)

# Judges and downloads go to one cache per test session (CI sets its own fresh one); a cache made here is removed
# when the session ends, so test runs do not pile up folders in /tmp.
if "DIFFLAB_CACHE" not in os.environ:
    os.environ["DIFFLAB_CACHE"] = tempfile.mkdtemp(prefix="difflab-test-cache-")
    atexit.register(shutil.rmtree, os.environ["DIFFLAB_CACHE"], ignore_errors=True)


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

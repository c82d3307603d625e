"""Guarantee 2: a crash at any moment loses at most the work since the last snapshot, never the snapshot.

`difflab train` runs in a child process that is SIGKILLed at random moments (many of them inside a
checkpoint write, which DIFFLAB_TEST_SLOW_WRITES makes slow), then resumed with `--resume`. To keep 20
kills fast, children are forked from one prepared interpreter (torch and difflab imported and the
dataset decoded once, no torch work done before the fork, so forking is safe); each child runs the
real CLI `main`.
Also: SIGTERM and SIGINT make a real `python -m difflab train` save and exit with code 2.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from forkserver import ForkServer  # tests/reliability/forkserver.py

from difflab.run import RunFolder
from difflab.run import files as ckpt
from difflab.training.config import TrainConfig
from difflab.training.trainer import Trainer

KILLS = 20
STEPS = 40
TINY = ["--channels", "8,16", "--batch-size", "16", "--log-every", "1", "--num-sample-grids", "0",
        "--sample-steps", "2", "--warmup-steps", "5", "--no-eval", "--no-progress"]

PRELOAD = """
import functools
import difflab.api, difflab.report.plots
import difflab.training.pieces as pieces
pieces.load_dataset = functools.lru_cache(pieces.load_dataset)  # decoded once here, shared by every fork
pieces.load_dataset("mnist5k", data_dir=None, image_size=None)  # no torch compute before fork
"""


def temp_leftovers(run: Path) -> list[Path]:
    return [p for p in (*run.glob(".*"), *run.glob("state/.*")) if p.name.endswith(".tmp") or p.name == ".state.old"]


def check_snapshot(run: Path, last_step: int) -> int:
    """What a resume reads must be a complete snapshot no older than the last one seen."""
    tensors, info = RunFolder(run).read_state()  # raises on a partial or corrupt file
    assert not temp_leftovers(run), temp_leftovers(run)
    assert set(tensors) == {"model", "ema", "optimizer", "rng"}
    assert info["step"] >= last_step
    ckpt.load_tensors(run / "model.safetensors")
    ckpt.load_tensors(run / "ema.safetensors")
    return info["step"]


def wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def wait_for_write(run: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not temp_leftovers(run):
        assert time.monotonic() < deadline, "no checkpoint write seen"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    forks = ForkServer(tmp_path_factory.mktemp("forks"), preload=PRELOAD, close_timeout=30)
    yield forks
    forks.close()


def wait_for_new_snapshot(run: Path, step: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while _saved_step(run) <= step:
        assert time.monotonic() < deadline, "no new snapshot"
        time.sleep(0.005)


def _saved_step(run: Path) -> int:
    try:
        return json.loads((run / "state" / "trainer.json").read_text())["step"]
    except (OSError, ValueError):  # between the renames of a snapshot swap, or mid-write
        return -1


def test_sigkill_at_random_moments_never_loses_the_snapshot(server, tmp_path):
    run, rng = tmp_path / "run", random.Random(1234)
    slow = {"DIFFLAB_TEST_SLOW_WRITES": "0.01"}
    argv = ["train", "--out", str(run), "--steps", str(STEPS), "--checkpoint-minutes", "0", *TINY]
    last_step, kills, mid_write = 0, 0, 0
    for attempt in range(KILLS):
        pid, log = server.start(argv, slow)
        if attempt == 0:
            wait_for(run / "state" / "trainer.json")
        if attempt % 2:  # odd kills: while a checkpoint write is in flight
            wait_for_write(run)
            time.sleep(rng.uniform(0, 0.015))
        elif attempt % 4:  # once a new snapshot exists: anywhere in a step or a write
            wait_for_new_snapshot(run, last_step)
            time.sleep(rng.uniform(0, 0.2))
        else:  # from the child's start: loading, the resume's own reads and clean-up, a step, a write
            time.sleep(rng.uniform(0, 0.4))
        os.kill(pid, signal.SIGKILL)
        signum, code = server.wait()
        assert signum == signal.SIGKILL, f"child ended by itself (code {code}): {log.read_text()[-2000:]}"
        kills += 1
        mid_write += bool(temp_leftovers(run))
        last_step = check_snapshot(run, last_step)
        argv = ["train", "--resume", str(run), *TINY]
    t0 = time.monotonic()
    pid, log = server.start(argv + ["--checkpoint-minutes", "100"], {})
    assert server.wait() == (0, 0), log.read_text()[-2000:]
    assert kills == KILLS and mid_write >= KILLS // 3, (kills, mid_write)  # the kills did land inside writes
    print(f"{kills} kills, {mid_write} inside a write, last snapshot step {last_step}")
    assert KILLS // 4 <= last_step < STEPS  # each kill after a new snapshot made progress
    t1 = time.monotonic()
    _assert_equals_uninterrupted(run, tmp_path / "straight")
    print("final", t1 - t0, "reference", time.monotonic() - t1)


def _assert_equals_uninterrupted(run: Path, straight: Path) -> None:
    """20 kills and resumes end bitwise where one uninterrupted run ends, with the same loss trace."""
    config = TrainConfig.load(run / "config.json").replace(checkpoint_minutes=100.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Trainer(config, straight, show_progress=False).run()
    finally:
        torch.set_num_threads(threads)
    losses = [[json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (run, straight)]
    assert len(losses[0]) == STEPS and losses[0] == losses[1]
    for name in ("model", "ema"):
        a, b = (ckpt.load_tensors(d / f"{name}.safetensors") for d in (run, straight))
        assert all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_save_and_exit_cleanly(server, tmp_path, sig):
    run = tmp_path / "run"
    pid, log = server.start(["train", "--out", str(run), "--steps", "100000", "--checkpoint-minutes", "100", *TINY], {})
    wait_for(run / "metrics.jsonl")
    while (run / "metrics.jsonl").read_text().count("\n") < 3:  # a few steps done, no snapshot yet
        time.sleep(0.02)
    os.kill(pid, sig)
    assert server.wait() == (0, 128 + sig), log.read_text()[-2000:]  # 130 / 143: stopped, not failed
    err = "".join(line for line in log.read_text().splitlines(True)
                  if not line.startswith("recipe "))  # the log holds stdout too: the recipe line train prints first
    assert err.startswith("difflab: stopped by") and err.count("\n") == 1, err
    _, info = RunFolder(run).read_state()
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert info["step"] == logged[-1] >= 3  # every step done was saved: nothing lost

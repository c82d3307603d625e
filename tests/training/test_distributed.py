"""Training over 2 CPU processes (gloo) equals a 1-process run at the same global batch; only rank 0 writes.

The 2-process runs go through `difflab.train(processes=2)`, the same path as `difflab train --processes 2`
(spawned workers, a real process group, DDP). DIFFLAB_TEST_RANK0_WRITES makes any write by rank 1 fail.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import difflab
from difflab.errors import UserError
from difflab.run import files as ckpt
from difflab.training import distributed
from difflab.training.config import TrainConfig
from difflab.training.trainer import Trainer

LOSS_RTOL = 1e-4  # 2 vs 1 process: the float summation order of the gradient differs ...
WEIGHT_RTOL = 1e-3  # ... and Adam turns float noise in a near-zero gradient into a full step (seen: 7e-5 relative)


@pytest.fixture(scope="module")
def config() -> TrainConfig:
    # fp32: bf16 autocast rounds a half batch differently from a whole one (oneDNN picks other kernels),
    # far above the 1e-4 this file checks; the sharding itself is what is tested here
    return TrainConfig(channels=(8, 16), batch_size=16, steps=20, minutes=None, log_every=5, warmup_steps=5,
                       num_sample_grids=0, sample_steps=4, checkpoint_minutes=100.0, precision="fp32")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Workers and in-process runs on one thread each: they then sum in the same order, and on 2 busy
    cores a second OpenMP thread mostly spins."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        yield
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, config):
    """The same run on 2 processes (rank 1 may not write) and on 1."""
    tmp = tmp_path_factory.mktemp("dist")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIFFLAB_TEST_RANK0_WRITES", "1")
        difflab.train(config, out=tmp / "two", processes=2, progress=False, evaluate=False)
    difflab.train(config, out=tmp / "one", progress=False, evaluate=False)
    return tmp


def emulate(config: TrainConfig, run_dir, ranks: tuple[int, ...]):
    """In one process, what DDP computes over `len(ranks)` processes: the mean of the slice losses of `ranks`
    (every slice from the same random numbers). ranks=(0, 0) is a classic bug: every rank on the same rows."""
    trainer = Trainer(config, run_dir, show_progress=False)
    single = trainer.loss

    def loss(x0, labels):
        state, parts = trainer.generator.get_state(), []
        for r in ranks:
            trainer.generator.set_state(state)  # each rank draws the same global random numbers
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(distributed, "world_size", lambda: len(ranks))
                mp.setattr(distributed, "rank", lambda r=r: r)
                parts.append(single(x0, labels))
        return sum(parts[1:], parts[0]) / len(parts)

    trainer.loss = loss
    trainer.run()
    return Path(run_dir)


def losses(run_dir) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len({r["step"] for r in rows}) == len(rows), "a step was logged twice"
    return {r["step"]: r["loss"] for r in rows}


def weight_differences(a, b) -> tuple[float, float]:
    """(largest absolute, relative L2) difference of the EMA weights of two runs."""
    x, y = (ckpt.load_tensors(d / "ema.safetensors") for d in (a, b))
    assert x.keys() == y.keys()
    largest = max((x[k] - y[k]).abs().max().item() for k in x)
    norm = lambda ts: sum(t.double().square().sum() for t in ts).sqrt().item()
    return largest, norm(x[k] - y[k] for k in x) / norm(x.values())


def close(a, b) -> bool:
    la, lb = losses(a), losses(b)
    assert la.keys() == lb.keys()
    return np.allclose(list(la.values()), list(lb.values()), rtol=LOSS_RTOL, atol=0) and \
        weight_differences(a, b)[1] < WEIGHT_RTOL


def test_two_processes_compute_the_mean_of_the_two_slice_losses_exactly(runs, config, tmp_path):
    emulated = emulate(config, tmp_path / "emulated", ranks=(0, 1))
    assert losses(runs / "two") == losses(emulated)
    assert weight_differences(runs / "two", emulated)[0] == 0.0


def test_two_processes_train_like_one_at_the_same_global_batch(runs):
    assert list(losses(runs / "two")) == [5, 10, 15, 20]
    assert close(runs / "one", runs / "two")


def test_the_comparison_catches_ranks_training_on_the_same_rows(runs, config, tmp_path):
    assert not close(runs / "one", emulate(config, tmp_path / "bug", ranks=(0, 0)))


def test_only_rank_0_writes(runs):
    """Rank 1 wrote nothing (the hook would have failed the run), and the folders hold the same files."""
    def listing(d):
        return sorted(str(p.relative_to(d)) for p in d.rglob("*"))

    assert listing(runs / "two") == listing(runs / "one")


def test_rank0_write_hook_fails_other_ranks(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFLAB_TEST_RANK0_WRITES", "1")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(RuntimeError, match="rank 1 wrote"):
        ckpt.atomic_write_text(tmp_path / "x.txt", "no")
    assert not (tmp_path / "x.txt").exists()


def test_stop_on_one_rank_stops_all_then_resume_with_2_and_with_1_process(runs, config, tmp_path, monkeypatch):
    """A stop seen by rank 1 alone stops both ranks at step 10; resuming (with 2 or 1 processes) finishes
    the run as if it had never stopped."""
    monkeypatch.setenv("DIFFLAB_TEST_RANK0_WRITES", "1")  # for the stopped and the resumed run
    with monkeypatch.context() as mp:
        mp.setenv("DIFFLAB_TEST_STOP", "10:1")
        with pytest.raises(UserError, match="stopped by SIGTERM at step 10; state saved"):
            difflab.train(config, out=tmp_path / "two", processes=2, progress=False, evaluate=False)
    assert ckpt.read_json(tmp_path / "two" / "state" / "trainer.json")["step"] == 10
    shutil.copytree(tmp_path / "two", tmp_path / "one")

    difflab.train(resume=tmp_path / "two", processes=2, progress=False, evaluate=False)
    assert losses(tmp_path / "two") == losses(runs / "two")  # the same computation as the uninterrupted run
    assert weight_differences(tmp_path / "two", runs / "two")[0] == 0.0
    Trainer(config, tmp_path / "one", resume=True, show_progress=False).run()
    assert close(runs / "one", tmp_path / "one")


def test_a_batch_that_does_not_split_is_one_line_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "difflab", "train", "--processes", "3", "--batch-size", "16",
                             "--steps", "2", "--out", str(tmp_path / "run"), "--no-progress", "--no-eval"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "difflab: error: --batch-size 16 (the global batch) does not split evenly over 3 processes; "
        "fix: --batch-size 18 or another multiple of 3"]
    assert not (tmp_path / "run").exists()


def test_an_error_in_a_worker_reaches_the_caller_as_its_user_error(runs, tmp_path):
    """Rank 0 finds no snapshot while rank 1 waits for it: the caller gets rank 0's UserError (the CLI
    prints it as one line, exit 2), not torch's report of a failed child process."""
    shutil.copytree(runs / "two", tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "state")
    with pytest.raises(UserError) as caught:
        difflab.train(resume=tmp_path / "run", processes=2, progress=False, evaluate=False)
    assert str(caught.value) == f"{tmp_path / 'run'} has no resumable state (state/trainer.json); fix: start a new run"


def test_sigterm_to_the_launcher_stops_every_worker_at_one_step_and_saves(tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "difflab", "train", "--processes", "2", "--out", str(run),
                             "--steps", "100000", "--channels", "8,16", "--batch-size", "16", "--log-every", "1",
                             "--num-sample-grids", "0", "--no-progress", "--no-eval"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "metrics.jsonl").exists() or (run / "metrics.jsonl").read_text().count("\n") < 3:
        assert time.monotonic() < deadline and proc.poll() is None, "no training steps seen"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and err.startswith("difflab: stopped by SIGTERM") and err.count("\n") == 1, err
    logged = losses(run)
    assert ckpt.read_json(run / "state" / "trainer.json")["step"] == max(logged) >= 3  # every step done was saved


def test_shard_takes_this_ranks_rows(monkeypatch):
    rows = torch.arange(8)
    assert distributed.shard(rows, None) == (rows, None)  # one process: the same objects
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    part, nothing = distributed.shard(rows, None)
    assert part.tolist() == [4, 5, 6, 7] and nothing is None


def test_processes_must_match_torchrun(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert distributed.check_processes(None, 16) == 4
    with pytest.raises(UserError, match="torchrun started 4 processes"):
        distributed.check_processes(2, 16)


def test_text_conditioning_shards_like_labels(config, tmp_path):
    """Prompt embeddings `(B, L, D)` are sliced per rank like class ids: 2 processes train like 1."""
    text = config.replace(conditioning="text", steps=10)
    difflab.train(text, out=tmp_path / "two", processes=2, progress=False, evaluate=False)
    difflab.train(text, out=tmp_path / "one", progress=False, evaluate=False)
    assert close(tmp_path / "one", tmp_path / "two")


def test_deferred_checks_over_2_processes_agree_every_log_line(runs, config, tmp_path, monkeypatch):
    """The GPU's way (no per-step host reads, ranks agree on clock and stops only at log lines) trains the
    same numbers; a stop rank 1 sees at step 7 stops both ranks at the next log line, step 10."""
    monkeypatch.setenv("DIFFLAB_TEST_DEFERRED_CHECKS", "1")
    monkeypatch.setenv("DIFFLAB_TEST_RANK0_WRITES", "1")
    with monkeypatch.context() as mp:
        mp.setenv("DIFFLAB_TEST_STOP", "7:1")
        with pytest.raises(UserError, match="stopped by SIGTERM at step 10; state saved"):
            difflab.train(config, out=tmp_path / "two", processes=2, progress=False, evaluate=False)
    difflab.train(resume=tmp_path / "two", processes=2, progress=False, evaluate=False)
    assert losses(tmp_path / "two") == losses(runs / "two")
    assert weight_differences(tmp_path / "two", runs / "two")[0] == 0.0

"""Guarantees 3-6: exact resume, NaN/inf never reach weights or checkpoints, config mismatch refused,
write errors (disk full, unwritable folder) stop cleanly with the previous snapshot intact."""

from __future__ import annotations

import errno
import json
import os
import random

import numpy as np
import pytest
import torch

import difflab
from difflab.cli import main
from difflab.errors import UserError
from difflab.run import RunFolder
from difflab.run import files as ckpt
from difflab.training import trainer as trainer_module
from difflab.training.trainer import Trainer


@pytest.fixture
def deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


@pytest.fixture
def config(tiny_config):
    return tiny_config.replace(steps=12, log_every=1, num_sample_grids=0)


def losses(run_dir) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def global_rngs() -> tuple:
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def seed_globals(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def test_resume_is_bitwise_exact(tmp_path, config, deterministic):
    seed_globals(7)
    Trainer(config, tmp_path / "straight", show_progress=False).run()
    straight_rngs = global_rngs()

    seed_globals(7)
    half = Trainer(config, tmp_path / "resumed", show_progress=False)
    while half.step < 6:  # N/2 steps of the same N-step run, then a snapshot
        half._log(half.train_step(), 0.0)
    half.save()
    half._log(half.train_step(), 0.0)  # work after the snapshot, lost when the process dies
    del half
    seed_globals(999)  # a new process starts with other global RNG states
    Trainer(config, tmp_path / "resumed", resume=True, show_progress=False).run()

    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed") and len(losses(tmp_path / "resumed")) == 12
    for name in ("model", "ema", "optimizer", "rng"):
        a, b = (ckpt.load_tensors(tmp_path / d / "state" / f"{name}.safetensors") for d in ("straight", "resumed"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    resumed_rngs = global_rngs()
    assert torch.equal(straight_rngs[0], resumed_rngs[0])  # torch
    assert np.array_equal(straight_rngs[1], resumed_rngs[1])  # numpy
    assert straight_rngs[2] == resumed_rngs[2]  # python


def test_snapshot_without_rng_state_needs_allow_rng_reset(tmp_path, config):
    Trainer(config.replace(steps=2), tmp_path / "run", show_progress=False).run()
    (tmp_path / "run" / "state" / "rng.safetensors").unlink()
    with pytest.raises(UserError, match="no RNG state.*--allow-rng-reset"):
        Trainer(config.replace(steps=4), tmp_path / "run", resume=True, show_progress=False)
    trainer = Trainer(config.replace(steps=4), tmp_path / "run", resume=True, show_progress=False, allow_rng_reset=True)
    assert trainer.step == 2
    trainer.run()
    assert RunFolder(tmp_path / "run").read_state()[1]["step"] == 4


@pytest.mark.parametrize("where,value", [("loss", "nan"), ("loss", "inf"), ("grad", "nan"), ("grad", "-inf")])
def test_a_non_finite_step_is_skipped_and_counted(tmp_path, config, monkeypatch, where, value):
    monkeypatch.setenv("DIFFLAB_TEST_BAD_STEPS", f"3:{where}:{value}")
    trainer = Trainer(config.replace(steps=5), tmp_path / "run", show_progress=False)
    trainer.train_step(), trainer.train_step()
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (trainer.model, trainer.ema.model)]
    moments = [s["exp_avg"].clone() for s in trainer.optimizer.state.values()]
    assert torch.isnan(trainer.train_step())  # attempt 3: poisoned
    assert trainer.step == 2 and trainer.skipped_steps == 1 and trainer.bad_steps == 1
    for old, model in zip(before, (trainer.model, trainer.ema.model)):
        assert all(torch.equal(old[k], v) for k, v in model.state_dict().items())
    assert all(torch.equal(m, s["exp_avg"]) for m, s in zip(moments, trainer.optimizer.state.values()))
    trainer.run()
    tensors, info = RunFolder(tmp_path / "run").read_state()
    assert info["skipped_steps"] == 1 and info["step"] == 5
    assert all(torch.isfinite(v).all() for group in ("model", "ema", "optimizer") for v in tensors[group].values())


def test_consecutive_bad_steps_stop_naming_the_last_good_checkpoint(tmp_path, config, monkeypatch):
    monkeypatch.setenv("DIFFLAB_TEST_BAD_STEPS", "4-1000:loss:nan")
    monkeypatch.setattr(trainer_module, "MAX_BAD_STEPS", 6)
    trainer = Trainer(config.replace(checkpoint_minutes=0.0), tmp_path / "run", show_progress=False)
    with pytest.raises(UserError, match=r"6 consecutive non-finite .* at step 3; last good "
                                        r"checkpoint: .*state \(step 3\)"):
        trainer.run()
    tensors, info = RunFolder(tmp_path / "run").read_state()
    assert info["step"] == 3 and info["skipped_steps"] == 5  # the 6th stops before any save
    assert all(torch.isfinite(v).all() for v in tensors["model"].values())


@pytest.fixture
def saved_run(tmp_path, config):
    return Trainer(config.replace(steps=2), tmp_path / "run", show_progress=False).run()


@pytest.mark.parametrize("change,shown", [
    (dict(channels=(8, 32)), r"channels: \[8, 16\] -> \[8, 32\]"),
    (dict(schedule="linear"), "schedule: 'cosine' -> 'linear'"),
    (dict(num_timesteps=500), "num_timesteps: 1000 -> 500"),
    (dict(dataset="mnist"), "dataset: 'mnist5k' -> 'mnist'"),
])
def test_resume_with_another_config_is_refused_with_the_diff(saved_run, change, shown):
    before = (saved_run / "config.json").read_text()
    with pytest.raises(UserError, match=shown):
        difflab.train(resume=saved_run, progress=False, evaluate=False, **change)
    assert (saved_run / "config.json").read_text() == before


def test_snapshot_from_another_config_is_refused(saved_run):
    """config.json edited by hand: the snapshot remembers what it was trained with."""
    config = json.loads((saved_run / "config.json").read_text())
    (saved_run / "config.json").write_text(json.dumps({**config, "num_timesteps": 200}))
    with pytest.raises(UserError, match="saved with another configuration.*num_timesteps: 1000 -> 200"):
        difflab.train(resume=saved_run, progress=False, evaluate=False)


@pytest.mark.parametrize("good_writes,shown", [
    (0, "its snapshot, if any, is intact"),  # while preparing the resume (metrics trim)
    (2, r"last good checkpoint: .*state \(step 2\)"),  # the first file of the new snapshot
    (5, r"last good checkpoint: .*state \(step 2\)"),  # the last file of the new snapshot, before the swap
])
def test_disk_full_keeps_the_previous_snapshot_and_stops_cleanly(saved_run, monkeypatch, good_writes, shown):
    files = {p: p.read_bytes() for p in saved_run.rglob("*.safetensors")}
    fsync, calls = os.fsync, []

    def fill_up(fd):
        calls.append(fd)
        if len(calls) > good_writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        fsync(fd)

    monkeypatch.setattr(ckpt.os, "fsync", fill_up)
    with pytest.raises(UserError, match=rf"No space left on device.*{shown}"):
        difflab.train(resume=saved_run, steps=4, progress=False, evaluate=False)
    monkeypatch.undo()
    assert len(calls) == good_writes + 1
    assert {p: p.read_bytes() for p in saved_run.rglob("*.safetensors")} == files
    assert not [p for p in saved_run.rglob(".*") if p.name.endswith(".tmp")]
    assert RunFolder(saved_run).read_state()[1]["step"] == 2


def test_unwritable_out_is_reported_before_training(tmp_path, monkeypatch, capsys):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(Trainer, "__init__", lambda *a, **k: pytest.fail("training started"))
    assert main(["train", "--out", str(tmp_path / "a-file" / "run"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error: cannot write to run folder") and err.count("\n") == 1

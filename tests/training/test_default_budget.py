"""The default budget is a number of optimizer steps (the same model on every machine); a run that ended
before the model can be good is named loudly, with the fix."""

import json

import pytest

import difflab.api
from difflab.cli import main
from difflab.run import RunFolder
from difflab.run.folder import STATE_INFO
from difflab.training.adequacy import MIN_USEFUL_STEPS, describe, record, training_facts, undertrained
from difflab.training.budget import Budget, Counters
from difflab.training.config import DEFAULT_STEPS, TrainConfig


def test_the_default_budget_is_steps_not_minutes():
    config = TrainConfig()
    assert (config.steps, config.epochs, config.minutes) == (DEFAULT_STEPS, None, None)
    assert Budget.of(config, 5000).fraction(Counters(step=DEFAULT_STEPS // 2, elapsed=1e6)) == 0.5  # the clock: no say


def test_explicit_minutes_stay_the_users_choice():
    config = TrainConfig(minutes=0.5)
    assert (config.steps, config.minutes) == (None, 0.5)
    assert Budget.of(config, 5000).fraction(Counters(step=10**6, elapsed=15.0)) == 0.5
    assert TrainConfig(epochs=2.0).steps is None


def test_warning_threshold():
    assert 0 < MIN_USEFUL_STEPS < DEFAULT_STEPS  # the default run never warns
    assert undertrained(DEFAULT_STEPS) is None and undertrained(MIN_USEFUL_STEPS) is None
    line = undertrained(MIN_USEFUL_STEPS - 1)
    assert line.startswith(f"WARNING: only {MIN_USEFUL_STEPS - 1:,} optimizer steps") and "\n" not in line
    assert f"fix: --steps {DEFAULT_STEPS}" in line and "--minutes" not in line
    timed = undertrained(14, minutes=3.0, wall_minutes=3.02)
    assert "only 14 optimizer steps" in timed and "longer --minutes: 14 steps in 3.0 min" in timed


def _fake_run(tmp_path, *, step: int, seen: int, elapsed: float, rows: list[dict], **config) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    folder.create(TrainConfig(**config), {"class_names": ["a"], "image_shape": [1, 28, 28]})
    folder.write_metrics(rows)
    folder.state_dir.mkdir()
    (folder.state_dir / STATE_INFO).write_text(json.dumps({"step": step, "seen": seen, "elapsed": elapsed}))
    return folder


def test_facts_come_from_the_final_snapshot(tmp_path):
    rows = [{"step": 25, "epoch": 0.32, "elapsed": 3.0}, {"step": 50, "epoch": 0.64, "elapsed": 6.0}]
    folder = _fake_run(tmp_path, step=60, seen=3840, elapsed=7.5, rows=rows, minutes=0.125)
    facts, warning = describe(folder)
    assert (facts.steps, facts.images, facts.wall_minutes) == (60, 3840, 0.12)
    assert facts.epochs == pytest.approx(0.768)  # the last logged epoch scaled from step 50 to 60
    assert facts.line() == "60 steps, 3,840 images seen (0.768 epochs), 0.1 min wall"
    assert "only 60 optimizer steps" in warning and "--minutes" in warning
    assert record(folder) == warning
    meta = folder.read_meta()
    assert meta["training"]["warning"] == warning and meta["training"]["steps"] == 60
    assert meta["class_names"] == ["a"]  # the rest of model.json is kept


def test_no_snapshot_no_facts(tmp_path):
    folder = _fake_run(tmp_path, step=1, seen=1, elapsed=1.0, rows=[], steps=1)
    (folder.state_dir / STATE_INFO).write_text("{torn")
    assert training_facts(folder) is None and record(folder) is None
    (folder.state_dir / STATE_INFO).unlink()
    assert describe(folder) == (None, None)


def test_a_budget_flag_replaces_the_config_files_budget(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(difflab.api, "train", lambda base, **kw: seen.append(base.replace(**kw_config(kw))))
    (tmp_path / "c.json").write_text(json.dumps({"steps": 50}))
    assert main(["train", "--config", str(tmp_path / "c.json"), "--minutes", "2"]) == 0
    assert main(["train", "--config", str(tmp_path / "c.json"), "--lr", "1e-3"]) == 0
    assert [(c.steps, c.minutes) for c in seen] == [(None, 2.0), (50, None)]


def kw_config(kw: dict) -> dict:
    return {k: v for k, v in kw.items() if k in TrainConfig.__dataclass_fields__}

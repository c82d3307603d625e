"""`RunFolder`: the one owner of a run folder's layout — atomic state, the metrics reader, the config check."""

import json
import os

import pytest
import torch

from difflab.errors import UserError
from difflab.run import RunFolder, files
from difflab.training.config import TrainConfig


@pytest.fixture
def folder(tmp_path) -> RunFolder:
    folder = RunFolder(tmp_path / "run")
    folder.create(TrainConfig(steps=10), {"class_names": ["a", "b"], "model": {"num_classes": 2, "channels": [8, 16]}})
    return folder


def test_create_writes_config_meta_and_empty_metrics(folder):
    assert folder.is_run() and folder.read_config() == TrainConfig(steps=10)
    assert folder.read_meta()["class_names"] == ["a", "b"]
    assert folder.read_metrics() == [] and folder.metrics_path.read_text() == ""
    spec = folder.read_spec()
    assert spec.num_classes == 2 and spec.channels == (8, 16) and spec.prediction == "v"  # from config.objective


def test_metrics_reader_skips_torn_and_foreign_lines_and_trim_keeps_the_snapshots_steps(folder):
    for step in (5, 10, 15):
        folder.append_metrics({"step": step, "loss": 0.1})
    with open(folder.metrics_path, "a") as f:
        f.write('[1, 2]\n{"step": 20, "lo')  # a JSON list, then a line cut short by a crash
    assert [r["step"] for r in folder.read_metrics()] == [5, 10, 15]
    folder.trim_metrics(10)
    assert [r["step"] for r in folder.read_metrics()] == [5, 10]
    assert folder.metrics_path.read_text().endswith("\n")


def test_state_round_trip_and_an_interrupted_write_keeps_the_old_snapshot(folder):
    tensors = {"model": {"w": torch.ones(2)}, "ema": {"w": torch.zeros(2)}, "optimizer": {"0.exp_avg": torch.ones(1)}}
    folder.write_state(tensors, {"step": 3})
    read, info = folder.read_state()
    assert info == {"step": 3} and torch.equal(read["model"]["w"], torch.ones(2))
    os.rename(folder.state_dir, folder.path / ".state.old")  # killed between the two renames of the next write
    (folder.path / ".state.abc.tmp").mkdir()  # and a half-written temp snapshot
    _, info = folder.read_state()
    assert info == {"step": 3} and not list(folder.path.glob(".state*"))


def test_missing_state_and_missing_files_are_one_line_errors(folder):
    with pytest.raises(UserError, match="no resumable state"):
        folder.read_state()
    folder.write_state({"model": {"w": torch.ones(1)}}, {"step": 1})
    with pytest.raises(UserError, match=r"incomplete \(missing ema.safetensors, optimizer.safetensors\)"):
        folder.read_state()


def test_config_check_allows_budget_changes_and_refuses_model_changes(folder):
    folder.check_config(TrainConfig(steps=99, guidance=5.0))  # budget and sampling defaults may change
    with pytest.raises(UserError, match=r"trained with different lr \(saved with another configuration: lr: 0.002 -> 0.01\)"):
        folder.check_config(TrainConfig(steps=10, lr=0.01))


def test_evals_damaged_json_and_foreign_folders(folder, tmp_path):
    folder.write_eval("final", {"accuracy": 0.9})
    folder.sub("eval", "broken.json").write_text("{not json")
    assert folder.read_eval("final") == {"accuracy": 0.9} and list(folder.read_evals()) == ["final"]
    with pytest.raises(UserError, match="is not a run folder"):
        RunFolder(tmp_path).require_run()
    with pytest.raises(UserError, match="not found"):
        RunFolder(tmp_path / "nowhere").require_run()
    folder.config_path.write_text("[1]")
    with pytest.raises(UserError, match="must hold a table of keys"):
        folder.read_config()
    with pytest.raises(ValueError, match="unknown run sub-folder"):
        folder.sub("elsewhere")


def test_atomic_write_leaves_no_temp_file_and_replaces_whole(tmp_path):
    path = tmp_path / "x.json"
    files.write_json(path, {"a": 1})
    files.write_json(path, {"b": 2})
    assert json.loads(path.read_text()) == {"b": 2} and [p.name for p in tmp_path.iterdir()] == ["x.json"]
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(UserError, match="is not valid JSON"):
        files.read_json(path)
    (tmp_path / "w.safetensors").write_bytes(b"garbage")
    with pytest.raises(UserError, match="is not a valid safetensors file"):
        files.load_tensors(tmp_path / "w.safetensors")


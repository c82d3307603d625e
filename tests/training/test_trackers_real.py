"""The real wandb (offline) and mlflow (a local file store) get what a tiny run logs, read back by their own readers.

wandb's transaction log RUN/wandb/offline-run-*/run-*.wandb is read with `wandb leet inspect --json`
(wandb's own reader, one JSON record a line); mlflow's store with `MlflowClient`. Neither reaches the
network: WANDB_MODE=offline, and MLFLOW_TRACKING_URI is unset so the tracker uses RUN/mlruns/. A resumed
training continues the same W&B / MLflow run (its id saved in the run folder), or says why it could not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from difflab.run.folder import RunFolder
from difflab.training.trainer import Trainer

WANDB_REASON = "the wandb extra is not installed: pip install 'difflab[wandb]'"
MLFLOW_REASON = "the mlflow extra is not installed: pip install 'difflab[mlflow]'"


@pytest.fixture
def offline_wandb(monkeypatch, tmp_path):
    """wandb with no network, no login and no files outside tmp_path."""
    pytest.importorskip("wandb", reason=WANDB_REASON)
    for name, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
                        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"), "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
                        "WANDB__DISABLE_STATS": "true", "WANDB__DISABLE_META": "true"}.items():  # no system probes: faster
        monkeypatch.setenv(name, value)
    for name in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(name, raising=False)


def wandb_records(run_dir) -> list[dict]:
    """Every record of the run's offline transaction log, decoded by wandb itself."""
    [log] = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    return wandb_log(log)


def wandb_log(log: Path) -> list[dict]:
    """The records of one offline transaction log RUN/wandb/offline-run-*/run-*.wandb."""
    done = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(log)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0 and "No such command" in done.stderr:
        pytest.skip("this wandb has no `wandb leet inspect` to read its run files (wandb >= 0.31 does)")
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


@pytest.mark.slow
def test_wandb_offline_run_has_losses_config_and_grid(offline_wandb, tiny_config, tmp_path):
    config = tiny_config.replace(steps=4, log_every=2, sample_steps=1, wandb=True)
    run_dir = Trainer(config, tmp_path / "run", show_progress=False).run()
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    records = wandb_records(run_dir)

    [run] = [r["run"] for r in records if r["type"] == "run"]
    assert run["project"] == "difflab" and run["display_name"] == "run"
    logged = run["config"]["update"]
    assert logged["lr"] == config.lr and logged["channels"] == list(config.channels) and logged["steps"] == 4

    history = [r["history"]["item"] for r in records if r["type"] == "history"]
    losses = {row["_step"]: row["train/loss"] for row in history if "train/loss" in row}
    assert losses == pytest.approx({row["step"]: row["loss"] for row in metrics if "loss" in row})
    assert sorted(losses) == [2, 4]
    [grid] = [row for row in history if "samples._type" in row]
    assert grid["_step"] == 2 and grid["samples._type"] == "image-file" and grid["samples.format"] == "png"
    [log_dir] = (run_dir / "wandb").glob("offline-run-*")
    assert (log_dir / "files" / grid["samples.path"]).is_file()

    [exit_record] = [r["exit"] for r in records if r["type"] == "exit"]
    assert exit_record.get("exit_code", 0) == 0  # finished, not crashed


@pytest.mark.slow
def test_wandb_run_is_marked_failed_when_training_raises(offline_wandb, tiny_config, tmp_path, monkeypatch):
    config = tiny_config.replace(steps=4, log_every=2, sample_steps=1, wandb=True)
    trainer = Trainer(config, tmp_path / "run", show_progress=False)

    def boom():
        raise RuntimeError("boom")

    monkeypatch.setattr(trainer, "train_step", boom)
    with pytest.raises(RuntimeError, match="boom"):
        trainer.run()
    [exit_record] = [r["exit"] for r in wandb_records(tmp_path / "run") if r["type"] == "exit"]
    assert exit_record["exit_code"] == 1


def train_then_resume(config, run_dir: Path) -> Path:
    """`config` trained to its steps, then resumed in a new Trainer (a new session) with twice the budget."""
    Trainer(config, run_dir, show_progress=False).run()
    return Trainer(config.replace(steps=2 * config.steps), run_dir, resume=True, show_progress=False).run()


def difflab_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("difflab:")]


@pytest.mark.slow
def test_wandb_resume_continues_the_same_run(offline_wandb, tiny_config, tmp_path, capsys):
    config = tiny_config.replace(steps=4, log_every=2, num_sample_grids=0, wandb=True)
    run_dir = train_then_resume(config, tmp_path / "run")
    assert difflab_lines(capsys.readouterr().err) == []
    logs = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))  # offline, one folder per session, by time
    assert len(logs) == 2
    sessions = [wandb_log(log) for log in logs]
    ids = [r["run"]["run_id"] for records in sessions for r in records if r["type"] == "run"]
    assert ids == [RunFolder(run_dir).read_trackers()["wandb"]] * 2
    steps = [[r["history"]["item"]["_step"] for r in records if r["type"] == "history" and "train/loss" in r["history"]["item"]]
             for records in sessions]
    assert steps == [[2, 4], [6, 8]]  # the resumed session goes on from its snapshot's step


@pytest.mark.slow
def test_wandb_resume_with_an_id_wandb_refuses_starts_a_new_run(offline_wandb, tiny_config, tmp_path, capsys):
    config = tiny_config.replace(steps=2, log_every=2, num_sample_grids=0, wandb=True)
    Trainer(config, tmp_path / "run", show_progress=False).run()
    RunFolder(tmp_path / "run").write_trackers({"wandb": "no/such:run"})  # characters wandb reserves
    capsys.readouterr()
    Trainer(config.replace(steps=4), tmp_path / "run", resume=True, show_progress=False).run()
    err = capsys.readouterr().err
    [line] = difflab_lines(err)
    assert "cannot continue the W&B run no/such:run" in line and "started a new W&B run" in line
    assert "Traceback" not in err
    new = RunFolder(tmp_path / "run").read_trackers()["wandb"]
    assert new != "no/such:run" and len(list((tmp_path / "run" / "wandb").glob(f"offline-run-*-{new}"))) == 1


@pytest.fixture
def local_mlflow(monkeypatch):
    """mlflow with no tracking URI set: the tracker's default store in RUN/mlruns/."""
    mlflow = pytest.importorskip("mlflow", reason=MLFLOW_REASON)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID",
                 "MLFLOW_ALLOW_FILE_STORE"):  # unset while training: the tracker opts in to its own default itself
        monkeypatch.delenv(name, raising=False)
    return mlflow


def only_run(mlflow, store, monkeypatch):
    """The one run in `store`'s "difflab" experiment, and a client to read it."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # recent mlflow 3 opens a file store only when asked
    client = mlflow.tracking.MlflowClient(tracking_uri=store.resolve().as_uri())
    [run] = client.search_runs([client.get_experiment_by_name("difflab").experiment_id])
    return client, run


@pytest.mark.slow
def test_mlflow_local_store_has_params_metric_history_and_grid(local_mlflow, tiny_config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # so a stray ./mlruns or ./mlflow.db would show up below
    config = tiny_config.replace(steps=4, log_every=2, sample_steps=1, mlflow=True)
    run_dir = Trainer(config, tmp_path / "run", show_progress=False).run()
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # the tracker's opt-in did not leak into the process

    client, run = only_run(local_mlflow, run_dir / "mlruns", monkeypatch)
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    assert run.data.params["lr"] == str(config.lr) and run.data.params["channels"] == str(list(config.channels))
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert {m.step: m.value for m in history} == pytest.approx({row["step"]: row["loss"] for row in metrics if "loss" in row})
    assert sorted(m.step for m in history) == [2, 4]
    assert {"train/lr", "train/images_per_s", "train/epoch"} <= set(run.data.metrics)
    [folder] = client.list_artifacts(run.info.run_id)
    assert folder.path == "samples" and folder.is_dir
    assert [a.path for a in client.list_artifacts(run.info.run_id, "samples")] == ["samples/step_000002.png"]


@pytest.mark.slow
def test_mlflow_run_is_marked_killed_on_ctrl_c(local_mlflow, tiny_config, tmp_path, monkeypatch):
    config = tiny_config.replace(steps=4, log_every=2, sample_steps=1, mlflow=True)
    trainer = Trainer(config, tmp_path / "run", show_progress=False)

    def interrupt():
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_step", interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    _, run = only_run(local_mlflow, tmp_path / "run" / "mlruns", monkeypatch)
    assert run.info.status == "KILLED"


@pytest.mark.slow
def test_mlflow_tracking_uri_from_the_environment_is_used(local_mlflow, tiny_config, tmp_path, monkeypatch):
    store = tmp_path / "elsewhere"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "difflab")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the user's own file store: their opt-in, as mlflow asks
    Trainer(tiny_config.replace(steps=2, log_every=2, num_sample_grids=0, mlflow=True), tmp_path / "run",
            show_progress=False).run()
    assert not (tmp_path / "run" / "mlruns").exists()
    _, run = only_run(local_mlflow, store, monkeypatch)
    assert run.data.metrics["train/loss"] > 0


@pytest.mark.slow
def test_mlflow_resume_continues_the_same_run(local_mlflow, tiny_config, tmp_path, monkeypatch, capsys):
    config = tiny_config.replace(steps=4, log_every=2, num_sample_grids=0, mlflow=True)
    run_dir = train_then_resume(config, tmp_path / "run")
    assert difflab_lines(capsys.readouterr().err) == []
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    client, run = only_run(local_mlflow, run_dir / "mlruns", monkeypatch)
    assert run.info.run_id == RunFolder(run_dir).read_trackers()["mlflow"] and run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert sorted(m.step for m in history) == [2, 4, 6, 8]  # both sessions, no step twice
    assert {m.step: m.value for m in history} == pytest.approx({row["step"]: row["loss"] for row in metrics if "loss" in row})
    assert run.data.params["steps"] == "4"  # mlflow keeps a param's first value; the resume must not fail on it


@pytest.mark.slow
def test_mlflow_resume_in_another_store_starts_a_new_run(local_mlflow, tiny_config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the user's own file stores: their opt-in, as mlflow asks
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "old").as_uri())
    config = tiny_config.replace(steps=2, log_every=2, num_sample_grids=0, mlflow=True)
    run_dir = Trainer(config, tmp_path / "run", show_progress=False).run()
    first = RunFolder(run_dir).read_trackers()["mlflow"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "new").as_uri())  # the store moved: the old run is not there
    capsys.readouterr()
    Trainer(config.replace(steps=4), run_dir, resume=True, show_progress=False).run()
    err = capsys.readouterr().err
    assert difflab_lines(err) == [f"difflab: cannot continue the MLflow run {first} (Run '{first}' not found); "
                                  "started a new MLflow run"]
    assert "Traceback" not in err

    client, run = only_run(local_mlflow, tmp_path / "new", monkeypatch)
    assert run.info.run_id != first and run.info.run_id == RunFolder(run_dir).read_trackers()["mlflow"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")] == [4]

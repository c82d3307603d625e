"""`difflab sweep`: two tiny runs in two processes, a rerun that skips them, a resume, judged sorting."""

import csv
import json
import shutil

import pytest

from difflab.cli import main
from difflab.sweep import SweepSpec, run_sweep

SPEC = """
[base]
channels = [8, 16]
batch_size = 16
steps = 10
warmup_steps = 2
log_every = 2
sample_steps = 2
num_sample_grids = 0
[grid]
lr = [1e-3, 4e-3]
[evaluate]
judge = false
"""


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    (root / "sweep.toml").write_text(SPEC)
    assert main(["sweep", str(root / "sweep.toml"), "--out", str(root / "out"), "--parallel", "2"]) == 0
    return root / "out"


def test_parallel_sweep_writes_run_folders_and_a_sorted_table(sweep_dir):
    runs = sorted(p.name for p in (sweep_dir / "runs").iterdir())
    assert runs == ["000-lr=0.001", "001-lr=0.004"]
    for name in runs:
        assert json.loads((sweep_dir / "runs" / name / "config.json").read_text())["steps"] == 10
        assert (sweep_dir / "runs" / name / "ema.safetensors").is_file()
    with open(sweep_dir / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["run"] for r in rows) == runs
    losses = [float(r["final_loss"]) for r in rows]
    assert losses == sorted(losses)  # best (lowest) first
    assert (sweep_dir / "results.md").read_text().startswith("Sorted by final_loss")
    assert (sweep_dir / "results.png").is_file() and (sweep_dir / "sweep.toml").is_file()


def test_rerun_skips_finished_runs_and_resumes_unfinished_ones(sweep_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "copy"
    shutil.copytree(sweep_dir, out)
    (out / "runs" / "001-lr=0.004" / "sweep-trained.json").unlink()  # as if killed before the end
    weights = out / "runs" / "000-lr=0.001" / "ema.safetensors"
    before = weights.stat().st_mtime_ns
    judged = []

    def fake_judge_run(run, *, n_per_class, seed, name, solver, steps, guidance, progress):
        judged.append((run.path.name, guidance))
        return {"accuracy": run.config.lr * 100 + guidance, "mean_confidence": 0.5}

    monkeypatch.setattr("difflab.api.judge_run", fake_judge_run)
    monkeypatch.setattr("difflab.sweep._warm_judges", lambda spec: None)
    spec = SweepSpec.from_dict({**spec_tables(), "evaluate": {"guidance": [1, 2], "n": 1}})
    rows = run_sweep(spec, out)
    said = capsys.readouterr().out
    assert "000-lr=0.001: trained already, skipped" in said and "001-lr=0.004: resuming" in said
    assert weights.stat().st_mtime_ns == before
    assert (out / "runs" / "001-lr=0.004" / "sweep-trained.json").is_file()
    assert len(judged) == 4
    assert [(r["run"], r["guidance"]) for r in rows] == [  # sorted by accuracy, best first
        ("001-lr=0.004", 2.0), ("000-lr=0.001", 2.0), ("001-lr=0.004", 1.0), ("000-lr=0.001", 1.0)]
    assert "accuracy" in (out / "results.md").read_text().splitlines()[2]


def test_changed_spec_does_not_reuse_a_run_folder(sweep_dir, capsys):
    changed = SPEC.replace("batch_size = 16", "batch_size = 8")
    (sweep_dir.parent / "changed.toml").write_text(changed)
    assert main(["sweep", str(sweep_dir.parent / "changed.toml"), "--out", str(sweep_dir)]) == 2
    assert "trained with different batch_size" in capsys.readouterr().err
    assert "batch_size = 16" in (sweep_dir / "sweep.toml").read_text()  # the record of the sweep is kept


def spec_tables() -> dict:
    import tomllib

    return tomllib.loads(SPEC)

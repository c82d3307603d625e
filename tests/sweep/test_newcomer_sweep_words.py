"""Issue 20 for `difflab sweep`: numbers for people, one closing "wrote" line, Ctrl-C is an interrupt."""

from __future__ import annotations

import signal

import pytest

from difflab import sweep
from difflab.cli import main
from difflab.errors import Stopped, UserError

SPEC = """
[base]
steps = 10
[grid]
dropout = [0.1, 0.30000000000000004]
[evaluate]
judge = false
"""


@pytest.mark.parametrize("key, value, text", [
    ("lr", 0.1 + 0.2, "0.3"), ("final_loss", 0.031234, "0.0312"), ("guidance", 3.0, "3"), ("steps", 600, "600"),
    ("accuracy", 0.91234, "91.2%"), ("accuracy", 1.0, "100.0%"), ("mean_confidence", 0.05, "5%"),
    ("channels", (8, 16), "8-16"), ("train_seconds", None, ""), ("objective", "v", "v"), ("ema", True, "True"),
])
def test_fmt_value_gives_three_significant_figures_and_rates_in_percent(key, value, text):
    assert sweep.fmt_value(key, value) == text


def test_results_table_has_no_raw_floats(tmp_path):
    rows = [{"run": "000", "dropout": 0.1 + 0.2, "guidance": 3.0, "final_loss": 0.1 + 0.2, "train_seconds": 12.3456}]
    sweep.write_results(rows, ("dropout",), "final_loss", tmp_path)
    md = (tmp_path / "results.md").read_text()
    assert "0.30000000000000004" not in md and "| 000 | 0.3 | 3 | 0.3 | 12.3 |" in md
    assert "0.30000000000000004" in (tmp_path / "results.csv").read_text()  # the CSV keeps every digit


def test_cli_best_line_is_formatted_and_the_last_line_says_what_was_written(tmp_path, monkeypatch, capsys):
    (tmp_path / "s.toml").write_text(SPEC)
    rows = [{"run": "001-dropout=0.30000000000000004", "guidance": 3.0, "final_loss": 0.1 + 0.2}]
    monkeypatch.setattr(sweep, "run_sweep", lambda spec, out, parallel: rows)
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "(final_loss 0.3, guidance 3)" in out[-2]
    assert out[-1] == f"wrote 2 run folder(s) to {tmp_path / 'out' / 'runs'} and the table to {tmp_path / 'out'}/results.md, .csv, .png"


def test_ctrl_c_in_training_is_an_interrupt_not_an_error(tmp_path, monkeypatch, capsys):
    """The trainer turns a first Ctrl-C into "stopped by SIGINT ... state saved" (`Stopped`); in a sweep that
    is an interrupt: exit 130, one line, and the run is not marked done (a rerun resumes it)."""
    from difflab import api

    def stopped(*args, **kwargs):
        raise Stopped("stopped by SIGINT at step 3; state saved: continue with difflab train --resume x", "SIGINT")

    monkeypatch.setattr(api, "train", stopped)
    spec = sweep.SweepSpec.from_dict({"base": {"steps": 10}, "evaluate": {"judge": False}})
    with pytest.raises(KeyboardInterrupt):
        sweep.run_one(spec.runs[0], tmp_path / "r", spec.evaluate, log=None)
    assert not (tmp_path / "r" / sweep.DONE).exists()
    (tmp_path / "s.toml").write_text("[base]\nsteps = 10\n[evaluate]\njudge = false\n")
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err == "difflab: interrupted\n"


def test_other_training_errors_stay_errors(tmp_path, monkeypatch):
    from difflab import api

    monkeypatch.setattr(api, "train", lambda *a, **k: (_ for _ in ()).throw(UserError("disk full")))
    spec = sweep.SweepSpec.from_dict({"base": {"steps": 10}, "evaluate": {"judge": False}})
    with pytest.raises(UserError, match="disk full"):
        sweep.run_one(spec.runs[0], tmp_path / "r", spec.evaluate, log=None)


def test_workers_ignore_ctrl_c_so_idle_ones_print_no_traceback():
    import torch

    before, threads = signal.getsignal(signal.SIGINT), torch.get_num_threads()
    try:
        sweep._init_worker(1)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
        torch.set_num_threads(threads)


def test_parallel_sweep_queues_no_run_beyond_the_workers(monkeypatch):
    """A run queued in the pool would start after Ctrl-C and train to the end while the interrupt waits."""
    import concurrent.futures as cf

    in_flight = []

    class Pool:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, fn, run, run_dir, spec, log=None):
            future = cf.Future()
            future.name = run.name
            return future

    def wait(futures, return_when, timeout=None):
        in_flight.append(len(futures))
        first = next(iter(futures))
        first.set_result([{"run": first.name}])
        return {first}, set(futures) - {first}

    monkeypatch.setattr(cf, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(cf, "wait", wait)
    spec = sweep.SweepSpec.from_dict({"base": {"steps": 10}, "grid": {"lr": [1e-3, 2e-3, 3e-3, 4e-3, 5e-3]}})
    jobs = [(run, None, spec.evaluate) for run in spec.runs]
    results = sweep._run_parallel(jobs, 2, None)
    assert [r[0]["run"] for r in results] == [run.name for run in spec.runs]  # in spec order
    assert max(in_flight) == 2


def test_a_parallel_sweep_says_where_each_run_in_training_is(tmp_path):
    import json as json_module

    from difflab.training.config import TrainConfig

    spec = sweep.SweepSpec.from_dict({"base": {"steps": 300}, "grid": {"lr": [1e-3, 2e-3]}})
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text(json_module.dumps(TrainConfig(steps=300).to_dict()))
    (tmp_path / "a" / "metrics.jsonl").write_text('{"step": 50, "loss": 0.1}\n{"step": 120, "loss": 0.09}\n')
    jobs = [(spec.runs[0], tmp_path / "a", spec.evaluate), (spec.runs[1], tmp_path / "b", spec.evaluate)]
    line = sweep._where_runs_are(jobs, 0, 2, 75.0)
    assert line == (f"sweep: 0 of 2 runs done; {spec.runs[0].name} at step 120 of 300; {spec.runs[1].name} at "
                    "starting; 1m15s elapsed")

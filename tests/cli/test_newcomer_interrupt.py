"""Issue 20: Ctrl-C is one line, `difflab: interrupted`, exit 130, and no progress bar jumps to 100% first."""

from __future__ import annotations

from difflab.cli import main


def test_evaluate_interrupted_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    from difflab.evaluation import suite
    from difflab.run import Run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "load", classmethod(lambda cls, *a, **k: object()))
    monkeypatch.setattr(suite, "evaluate_run", interrupted)
    assert main(["evaluate", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "difflab: interrupted\n"


def _interrupt_after(calls: int):
    from difflab.sampling import outputs

    add, seen = outputs.Outputs.add, []

    def add_then_stop(self, labels, images):
        if len(seen) == calls:
            raise KeyboardInterrupt
        seen.append(1)
        add(self, labels, images)

    return add_then_stop


def test_sample_bar_stops_where_it_was(tiny_run, tmp_path, monkeypatch, capsys):
    from difflab.sampling import outputs

    monkeypatch.setattr(outputs.Outputs, "add", _interrupt_after(2))
    assert main(["sample", str(tiny_run.path), "--n", "20", "--chunk-size", "4", "--steps", "1",
                 "--out", str(tmp_path / "g.png")]) == 130
    err = capsys.readouterr().err
    assert "8/20" in err and "20/20" not in err and "100%" not in err, err


def test_sample_interrupted_is_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    from difflab.sampling import outputs

    monkeypatch.setattr(outputs.Outputs, "add", _interrupt_after(1))
    assert main(["sample", str(tiny_run.path), "--n", "20", "--chunk-size", "4", "--steps", "1",
                 "--out", str(tmp_path / "g.png"), "--no-progress"]) == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("difflab:")]
    assert len(lines) == 1 and lines[0].startswith("difflab: interrupted"), lines


def test_training_bar_closed_early_does_not_show_100_percent(capsys):
    from difflab.training.budget import Counters
    from difflab.training.progress import Progress

    bar = Progress(lambda: 0.3, Counters(), label="training")
    bar(0.5, 100.0)
    bar.close()  # what the trainer's `finally` does after a Ctrl-C at 30% of the budget
    err = capsys.readouterr().err
    assert " 30%" in err and "100%" not in err, err

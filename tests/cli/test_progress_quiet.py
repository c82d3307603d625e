"""Issue 20: one progress module — a bar on a terminal, one line per stage in a log, silence under --quiet."""

from __future__ import annotations

import io

import pytest

from difflab import progress
from difflab.cli import build_parser


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _loud(monkeypatch):
    monkeypatch.delenv("DIFFLAB_QUIET", raising=False)
    previous = progress.set_quiet(None)
    yield
    progress.set_quiet(previous)


def test_piped_stage_is_one_line_with_its_time():
    out = io.StringIO()
    with progress.bar(2000, "evaluate: sampling", unit="img", stream=out) as shown:
        for _ in range(8):
            shown.update(250)
    assert "\r" not in out.getvalue()
    assert out.getvalue().splitlines() == [out.getvalue().rstrip("\n")]
    assert out.getvalue().startswith("evaluate: sampling 2,000 img ... done in ")


def test_a_long_piped_stage_says_where_it_is_every_half_minute(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress, "clock", lambda: now[0])
    out = io.StringIO()
    with progress.bar(100, "judge", unit="step", stream=out) as shown:
        for _ in range(100):
            now[0] += 3.0  # 300 s in all: 9 heartbeats, not 100 lines
            shown.update()
    lines = out.getvalue().splitlines()
    assert lines[0] == "judge 100 step ..." and lines[-1] == "judge: done in 5m00s"
    assert len(lines) == 2 + 9 and "10% (10/100 step), 30s elapsed, about 4m30s left" in lines[1]


def test_a_stage_stopped_early_says_where_it_stopped():
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt), progress.bar(20, "sampling", unit="img", stream=out) as shown:
        shown.update(8)
        raise KeyboardInterrupt
    assert "stopped at 40% (8/20 img)" in out.getvalue() and "done" not in out.getvalue()


def test_a_terminal_gets_a_tqdm_bar_with_an_eta():
    out = _Terminal()
    with progress.bar(4, "sampling", unit="img", stream=out) as shown:
        shown.update(4)
    assert "sampling" in out.getvalue() and "4/4" in out.getvalue() and "<" in out.getvalue()


@pytest.mark.parametrize("how", ["call", "env"])
def test_quiet_silences_bars_stages_and_lines(how, monkeypatch):
    if how == "call":
        progress.set_quiet(True)
    else:
        monkeypatch.setenv("DIFFLAB_QUIET", "1")
    for stream in (io.StringIO(), _Terminal()):
        with progress.bar(3, "x", stream=stream) as shown:
            shown.update(3)
        with progress.stage("y", stream=stream):
            pass
        progress.line("z", stream=stream)
        assert stream.getvalue() == ""


def test_an_error_starts_on_its_own_line(capsys):
    shown = progress.stage("evaluate: memorisation")
    progress.end_line()  # what `main` does before "difflab: error: ..."
    shown.close()
    err = capsys.readouterr().err
    assert err.startswith("evaluate: memorisation ...\n") and err.rstrip().endswith("done in 0s")


def test_every_subcommand_accepts_quiet_before_or_after_it():
    parser = build_parser()
    assert parser.parse_args(["-q", "report", "RUN"]).quiet is True
    assert parser.parse_args(["report", "RUN", "--quiet"]).quiet is True
    assert parser.parse_args(["report", "RUN"]).quiet is False
    assert parser.parse_args(["explain", "pca", "RUN", "-q"]).quiet is True  # nested sub-commands too
    assert parser.parse_args(["edit", "hybrid", "RUN", "--far", "1", "--near", "7", "-q"]).quiet is True


def test_main_applies_quiet_for_the_command_only(monkeypatch):
    from difflab.cli import main

    seen = []
    monkeypatch.setattr("difflab.cli.report.run", lambda args: seen.append(progress.is_quiet()) or 0)
    assert main(["report", "RUN", "-q"]) == 0 and main(["report", "RUN"]) == 0  # main builds its parser: patched run
    assert seen == [True, False] and progress.is_quiet() is False

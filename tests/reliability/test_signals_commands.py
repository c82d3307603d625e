"""Issue 19: SIGTERM and Ctrl-C during sample and evaluate stop cleanly: exit 143 / 130, one `difflab:` line
saying what was kept, the bar left where the work stopped, and nothing half-written.

Each command runs in a real child process forked from one prepared interpreter (torch and difflab imported
once, no torch work before the fork), like tests/reliability/test_kill.py; the child runs the CLI's `main`.
Signals are sent once the work is seen under way (a file or a log line), never after a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path

import pytest
from forkserver import ForkServer  # tests/reliability/forkserver.py

from difflab.errors import Stopped
from difflab.signals import Interrupted, Stopping

TIMEOUT = 300.0  # seconds to see the work start: generous, for 2 cores shared with a training job


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    forks = ForkServer(tmp_path_factory.mktemp("forks"), env={"DIFFLAB_QUIET": ""},
                       preload="import difflab.sampling.outputs, difflab.evaluation.suite, difflab.interop.pipeline")
    yield forks
    forks.close()


def wait_until(server: ForkServer, pid: int, done, what: str) -> None:
    """Poll `done()` until true; else the child is reaped (killed if need be), so the next test starts clean."""
    deadline = time.monotonic() + TIMEOUT
    while not done():
        if not _alive(pid) or time.monotonic() > deadline:
            failure = f"the child ended before {what}" if not _alive(pid) else f"{what} never happened"
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            server.wait()
            pytest.fail(failure)
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    """Running (the server reaps it only when asked, so an ended child lingers as a zombie)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def text(log: Path) -> str:
    return log.read_text() if log.exists() else ""  # the child creates its log just after the fork


def stop_lines(log: Path) -> tuple[list[str], str]:
    """The `difflab:` lines of the child's stderr (one expected) and all of it, carriage returns as lines."""
    text = log.read_text().replace("\r", "\n")
    return [line for line in text.splitlines() if line.startswith("difflab:")], text


def metadata_rows(folder: Path) -> list[dict]:
    text = (folder / "metadata.jsonl").read_text()
    assert text == "" or text.endswith("\n"), "a metadata line cut short"
    return [json.loads(line) for line in text.splitlines()]


def files_of(run: Path) -> list[str]:
    """Every file of a run folder (folders aside: an empty eval/ is nothing written)."""
    return sorted(str(p.relative_to(run)) for p in run.rglob("*") if not p.is_dir())


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_streaming_sample_keeps_whole_chunks(server, tiny_run, tmp_path, sig):
    from PIL import Image

    gen, grid, npz = tmp_path / "gen", tmp_path / "g.png", tmp_path / "s.npz"
    pid, log = server.start(["sample", str(tiny_run.path), "--n", "20000", "--chunk-size", "50", "--steps", "4",
                             "--out-dir", str(gen), "--out", str(grid), "--save-npz", str(npz)])
    metadata = gen / "metadata.jsonl"
    wait_until(server, pid, lambda: metadata.is_file() and metadata.stat().st_size > 0, "a first chunk written")
    os.kill(pid, sig)
    assert server.wait() == (0, 128 + sig), log.read_text()[-2000:]
    lines, err = stop_lines(log)
    rows = metadata_rows(gen)
    done = len(rows)
    word = "stopped by SIGTERM" if sig == signal.SIGTERM else "interrupted"
    assert len(lines) == 1 and lines[0].startswith(f"difflab: {word} after {done:,} of 20,000 images; kept: "), err
    assert f"{gen} holds {done:,} of 20,000 images" in lines[0] and "sample again into a new --out-dir" in lines[0]
    assert "error" not in err.lower() and "Traceback" not in err, err
    assert "stopped at" in err and f"({done:,}/20,000 img)" in err and "100%" not in err, err  # the bar
    assert 0 < done < 20000 and done % 50 == 0  # whole chunks only
    pngs = sorted(str(p.relative_to(gen)) for p in gen.glob("*/*.png"))
    assert pngs == sorted(r["file_name"] for r in rows)  # metadata lists exactly the PNGs on disk
    assert [r["index"] for r in rows] == list(range(done))
    for name in (pngs[0], pngs[-1]):
        Image.open(gen / name).load()  # whole files
    Image.open(grid).load()
    import numpy as np

    assert len(np.load(npz)["images"]) == done  # the .npz holds the same images as the folder
    assert not temp_files(tmp_path), temp_files(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sample_to_one_grid_stopped_early_writes_nothing(server, tiny_run, tmp_path, sig):
    grid = tmp_path / "x.png"
    pid, log = server.start(["sample", str(tiny_run.path), "--n", "400", "--chunk-size", "200", "--steps", "1000",
                             "--out", str(grid)])  # 200 images x 1000 steps: the first chunk takes a while
    wait_until(server, pid, lambda: "sampling 400 img" in text(log), "sampling started")
    os.kill(pid, sig)
    assert server.wait() == (0, 128 + sig), log.read_text()[-2000:]
    lines, err = stop_lines(log)
    word = "stopped by SIGTERM" if sig == signal.SIGTERM else "interrupted"
    assert lines == [f"difflab: {word} before the first of 400 images was done; nothing written; to get them, "
                     "sample again"], err
    assert "stopped at 0% (0/400 img)" in err and "100%" not in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_evaluate_stopped_while_sampling_writes_nothing(server, tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    before = files_of(run)
    pid, log = server.start(["evaluate", str(run), "--n", "2000", "--steps", "50"])
    wait_until(server, pid, lambda: "evaluate: sampling" in text(log), "sampling started")
    os.kill(pid, signal.SIGTERM)
    assert server.wait() == (0, 143), log.read_text()[-2000:]
    lines, err = stop_lines(log)
    assert lines == [f"difflab: stopped by SIGTERM while sampling 2,000 images; nothing written to {run}/eval/; "
                     "to evaluate, run the same command again"], err
    assert "stopped at" in err and "100%" not in err, err
    assert files_of(run) == before


@pytest.mark.slow
def test_evaluate_stopped_while_measuring_leaves_no_half_folder(server, tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    before = files_of(run)
    pid, log = server.start(["evaluate", str(run), "--n", "40", "--steps", "2"])
    wait_until(server, pid, lambda: "evaluate: judge and real features" in text(log), "measuring started")
    os.kill(pid, signal.SIGINT)
    assert server.wait() == (0, 130), log.read_text()[-2000:]
    lines, err = stop_lines(log)
    assert lines == [f"difflab: interrupted while measuring 40 images; nothing written to {run}/eval/; "
                     "to evaluate, run the same command again"], err
    assert "evaluate: judge and real features ... stopped after" in err, err
    assert files_of(run) == before


# --- the mechanism, in this process --------------------------------------------------------------
def test_a_signal_during_hold_waits_for_the_write_and_handlers_come_back():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    written = []
    with pytest.raises(Stopped) as stopped, Stopping(lambda: f"after {len(written)} writes") as stop:
        with stop.hold():
            os.kill(os.getpid(), signal.SIGTERM)
            written.append(1)  # the write goes on to its end
        written.append(2)  # never reached
    assert written == [1]
    assert str(stopped.value) == "stopped by SIGTERM after 1 writes" and stopped.value.exit_code == 143
    assert {s: signal.getsignal(s) for s in before} == before


def test_ctrl_c_becomes_stopped_and_an_ignored_signal_stays_ignored():
    with pytest.raises(Stopped, match="^interrupted at once$") as stopped, Stopping(lambda: "at once"):
        raise KeyboardInterrupt
    assert stopped.value.exit_code == 130
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with Stopping(lambda: ""):
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a sweep worker's, nohup's
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_IGN, signal.SIG_DFL)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_an_error_that_a_signal_caused_is_the_stop_not_an_error():
    """A signal raised inside a C extension's callback can come out as that library's own error."""
    with pytest.raises(Stopped, match="^stopped by SIGTERM while loading$"), Stopping(lambda: "while loading") as stop:
        stop.received = "SIGTERM"  # as the handler does
        raise ValueError("could not determine the shape of object type 'torch.storage.UntypedStorage'")
    with pytest.raises(ValueError, match="a real error"), Stopping(lambda: "never said"):
        raise ValueError("a real error")


def test_a_sigterm_the_command_did_not_word_is_still_one_line(capsys, monkeypatch):
    from difflab.cli import main, sample

    def stopped(args):
        raise Interrupted("SIGTERM")

    monkeypatch.setattr(sample, "run", stopped)
    assert main(["sample", "x"]) == 143
    assert capsys.readouterr().err == "difflab: stopped by SIGTERM\n"

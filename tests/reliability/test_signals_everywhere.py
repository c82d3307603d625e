"""Issue 19: SIGTERM stops every command as Ctrl-C does (one line, exit 143, every `finally` run), a parallel
sweep passes it on to its workers, and each picture or array difflab writes is whole or absent."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from difflab.cli import main
from difflab.run import files


def _sigterm_self(args):
    """A command that gets a real SIGTERM half-way, as `kill PID` sends it, and would go on for a minute."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)
    raise AssertionError("SIGTERM did not stop the command")


COMMANDS = {"edit": ["edit", "sdedit", "RUN", "--image", "x.png"], "explain": ["explain", "pca", "RUN"],
            "export": ["export", "RUN", "--diffusers", "OUT"], "report": ["report", "RUN"], "distill": ["distill", "RUN"]}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_sigterm_in_any_command_is_one_line_and_exit_143(command, monkeypatch, capsys):
    import difflab.cli

    build = difflab.cli.build_parser

    def parser_running_sigterm_self():  # the command's real options, parsed; its work replaced by `_sigterm_self`
        parser = build()
        parse = parser.parse_args
        parser.parse_args = lambda argv: setattr(args := parse(argv), "func", _sigterm_self) or args
        return parser

    monkeypatch.setattr(difflab.cli, "build_parser", parser_running_sigterm_self)
    assert main(COMMANDS[command]) == 143
    assert capsys.readouterr().err == "difflab: stopped by SIGTERM\n"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the CLI's handler is gone once it returns


def test_sigterm_in_the_studio_stops_the_server_cleanly(monkeypatch, capsys):
    from difflab.studio import server

    closed = []

    class Served:
        def close(self):
            closed.append(True)

    monkeypatch.setattr(server.time, "sleep", lambda s: os.kill(os.getpid(), signal.SIGTERM) or time.sleep(60))
    from difflab.signals import terminate_as_interrupt

    with terminate_as_interrupt():
        server.block(Served())
    assert closed == [True] and capsys.readouterr().err == "difflab studio: stopped by SIGTERM\n"


# --- every write is whole or absent ------------------------------------------------------------------------
def _writers(tmp_path: Path):
    """Each of difflab's writers of pictures and arrays, aimed at a file that already holds "old"."""
    from difflab.edit.commands import save_arrays
    from difflab.evaluation.figures import _save
    from difflab.interop.imagefolder import ImageFolderWriter
    from difflab.report.images import save_png
    from difflab.studio.pictures import write_npz

    images = torch.rand(2, 1, 8, 8) * 2 - 1

    def figure(path):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot([0, 1])
        _save(fig, path)

    def folder(path):
        with ImageFolderWriter(path.parent.parent, ["zero", "one"]) as writer:
            writer.write(images[:1], torch.tensor([0]))

    return {
        "png": (tmp_path / "a.png", lambda p: save_png(np.zeros((8, 8, 1), np.uint8), p)),
        "figure": (tmp_path / "b.png", figure),
        "npz": (tmp_path / "c.npz", lambda p: write_npz(p, images, None)),
        "edit arrays": (tmp_path / "d.npz", lambda p: save_arrays(p, {"x": np.zeros(3)})),
        "image folder": (tmp_path / "gen" / "zero" / "00000.png", folder),
    }


@pytest.mark.parametrize("writer", ["png", "figure", "npz", "edit arrays", "image folder"])
def test_a_full_disk_mid_write_keeps_the_old_file_and_no_temp(writer, tmp_path, monkeypatch):
    path, write = _writers(tmp_path)[writer]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        write(path)
    assert path.read_text() == "old"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file beside it


@pytest.mark.parametrize("writer", ["png", "figure", "npz", "edit arrays"])
def test_the_writers_still_write_files_their_readers_open(writer, tmp_path):
    from PIL import Image

    path, write = _writers(tmp_path)[writer]
    write(path)
    if path.suffix == ".png":
        assert Image.open(path).format == "PNG"
    else:
        assert len(np.load(path).files) >= 1


def test_a_picture_named_jpg_is_a_jpeg(tmp_path):
    from PIL import Image

    from difflab.report.images import save_png

    save_png(np.zeros((8, 8, 3), np.uint8), tmp_path / "x.jpg")
    assert Image.open(tmp_path / "x.jpg").format == "JPEG"


def test_the_report_leaves_out_pictures_a_killed_write_left_in_temp_folders(tiny_run, tmp_path):
    import shutil

    from difflab.report.html import write_report
    from difflab.report.images import save_png

    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    save_png(np.zeros((8, 8, 1), np.uint8), run / "eval" / ".confusion.k3j2.tmp" / "leftover_eval.png")
    save_png(np.zeros((8, 8, 1), np.uint8), run / "explain" / ".saliency.k3j2.tmp" / "leftover_explain.png")
    save_png(np.zeros((8, 8, 1), np.uint8), run / "explain" / "saliency" / "kept.png")
    page = write_report(run, out=tmp_path / "r.html").read_text()
    assert "leftover" not in page and "kept" in page


# --- a parallel sweep passes SIGTERM on ---------------------------------------------------------------------
SPEC = """
[base]
channels = [8, 16]
batch_size = 16
steps = 1000000
warmup_steps = 2
log_every = 2
sample_steps = 2
num_sample_grids = 0
checkpoint_minutes = 100.0
[grid]
lr = [1e-3, 4e-3]
[evaluate]
judge = false
"""


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.slow
def test_sigterm_to_a_parallel_sweep_saves_every_run_and_leaves_no_worker(tmp_path):
    from difflab.run import RunFolder

    (tmp_path / "s.toml").write_text(SPEC)
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DIFFLAB_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "difflab", "sweep", str(tmp_path / "s.toml"), "--out", str(out),
                             "--parallel", "2"], stderr=subprocess.PIPE, text=True, env=env)
    runs = [out / "runs" / "000-lr=0.001", out / "runs" / "001-lr=0.004"]
    deadline = time.monotonic() + 300
    while not all((r / "metrics.jsonl").is_file() and (r / "metrics.jsonl").stat().st_size for r in runs):
        if proc.poll() is not None or time.monotonic() > deadline:  # say why, and leave no million-step worker behind
            for pid in _children(proc.pid) if proc.poll() is None else []:
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            _, err = proc.communicate(timeout=60)
            started = [r.name for r in runs if r.is_dir()]
            pytest.fail(f"both runs did not start logging (exit {proc.returncode}; run folders {started}): {err[-3000:]}")
        time.sleep(0.1)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = [line for line in err.splitlines() if line.startswith("difflab:")]
    assert proc.returncode == 143 and len(lines) == 1 and "stopped by SIGTERM" in lines[0], err
    assert "Traceback" not in err, err
    for run in runs:
        assert RunFolder(run).has_state() and not (run / "sweep-trained.json").exists()  # a rerun resumes it
    time.sleep(1)
    assert workers and not [pid for pid in workers if _running(pid)]


# --- a result that cannot be written is kept elsewhere -------------------------------------------------------
def _full_disk(path):
    def write():
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    return write


def test_an_evaluation_whose_json_cannot_be_written_is_kept_and_the_old_one_stays_whole(tmp_path, monkeypatch):
    import json

    from difflab.errors import UserError
    from difflab.evaluation.suite import _Pictures
    from difflab.signals import Stopping

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "spare"))
    (tmp_path / "spare").mkdir()
    eval_dir = tmp_path / "eval"
    (eval_dir / "suite").mkdir(parents=True)
    (eval_dir / "suite" / "old.png").write_text("old picture")
    result = {"accuracy": 0.93, "fd": 1.5}
    with pytest.raises(UserError) as refused, Stopping(lambda: "") as stop, _Pictures(eval_dir / "suite", stop) as pics:
        (pics.temp / "new.png").write_text("new picture")
        pics.publish(_full_disk(eval_dir / "suite.json"), result)
    kept = list((tmp_path / "spare").glob("difflab-suite-*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text()) == result
    assert str(refused.value) == (f"cannot write {eval_dir / 'suite.json'} (No space left on device); the results are "
                                  f"kept in {kept[0]}; fix: free disk space or write to another disk, then copy them there")
    assert sorted(p.name for p in eval_dir.rglob("*")) == ["old.png", "suite"]  # the old evaluation, untouched


def test_with_no_writable_place_at_all_the_result_is_printed(tmp_path, monkeypatch, capsys):
    import json

    from difflab.run.outputs import kept_elsewhere

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "missing"))
    err = kept_elsewhere({"accuracy": 0.5}, OSError(errno.EROFS, "Read-only file system", "/r/eval/x.json"))
    assert json.loads(capsys.readouterr().out) == {"accuracy": 0.5}
    assert "the results are printed above; fix: write to a writable file system" in str(err)

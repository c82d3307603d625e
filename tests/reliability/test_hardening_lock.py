"""Issue 19, class 3: one writer per run folder, two real processes.

A `python -c` process takes the folder's lock as a trainer does; while it lives, a second trainer (`--out`
the same folder, or `--resume` it) is refused with one line naming the holder, and nothing in the folder
changes; readers still sample from it. Killed with SIGKILL, the holder's lock is gone at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from difflab.cli import main
from difflab.run import RunFolder
from difflab.run.lock import holder
from difflab.training.config import TrainConfig
from difflab.training.trainer import Trainer

TINY = TrainConfig(channels=(8, 16), batch_size=8, steps=2, minutes=None, log_every=1, warmup_steps=1,
                   num_sample_grids=0, sample_steps=2, checkpoint_minutes=100.0)
ARGS = ["--channels", "8,16", "--batch-size", "8", "--num-sample-grids", "0", "--no-eval", "--no-progress"]
HOLDER = "import sys, time; from difflab.run import RunFolder; locks = [RunFolder(p).lock().acquire() for p in " \
         "sys.argv[1:]]; print('locked', flush=True); time.sleep(300)"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return Trainer(TINY, tmp_path_factory.mktemp("locked") / "run", show_progress=False).run()


def digest(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file()}


def hold(*folders: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, *map(str, folders)], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline() != "locked\n":
        proc.kill()
        proc.wait()
        pytest.fail(f"the holder process could not lock {folders}")
    return proc


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("difflab: error:") and err.count("\n") == 1, err
    return err


def test_a_second_writer_is_refused_while_readers_work_and_a_killed_holder_frees_it(trained, tmp_path, capsys):
    run, new = tmp_path / "run", tmp_path / "new"
    shutil.copytree(trained, run)
    new.mkdir()
    holder = hold(run, new)  # as a trainer holds its folder
    try:
        before = digest(run)
        who = f"pid {holder.pid} on host {socket.gethostname()} since "
        assert main(["train", "--resume", str(run), "--steps", "3", *ARGS[-2:]]) == 2  # a run still training
        assert who in one_line(capsys)
        assert main(["train", "--out", str(run), "--steps", "1", *ARGS]) == 2  # the same --out twice
        assert who in one_line(capsys)
        assert main(["train", "--out", str(new), "--steps", "1", *ARGS]) == 2  # ... before its first snapshot
        assert who in one_line(capsys)
        assert [p.name for p in new.iterdir()] == [".lock"]  # no config, metrics or model.json of a second run
        assert main(["sample", str(run), "--n", "1", "--steps", "1", "--out", str(tmp_path / "x.png")]) == 0  # a reader
        assert (tmp_path / "x.png").is_file() and digest(run) == before
    finally:
        holder.kill()  # SIGKILL: no clean-up runs; the kernel drops the lock
        holder.wait()
    with RunFolder(run).lock(), RunFolder(new).lock():  # free at once: a killed run is resumable
        pass


def test_the_lock_is_reentrant_in_one_process_and_released_by_the_outermost(tmp_path):
    folder = RunFolder(tmp_path)

    def free() -> bool:
        fd = os.open(tmp_path / ".lock", os.O_RDWR)  # another open file: flock conflicts even in one process
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    with folder.lock():
        with folder.lock():  # the API and the trainer may both take it
            assert not free()
        assert not free()
        assert "pid" in holder(tmp_path / ".lock")
    assert free()
    (tmp_path / ".lock").write_bytes(b"\xff{")
    assert holder(tmp_path / ".lock").startswith("another process")

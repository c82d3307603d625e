"""Issue 19, class 7: outputs are checked before any work, and a failed write is one line naming the path.

Every command checks its output paths with `run/outputs.py` (extension, folder vs file, writable) before it
loads a model or samples, so these cases point at a run folder that does not even exist: the output is refused
first. A write error (ENOSPC, EROFS) is one line with the path and the fix (`outputs.guard`), and writes are
atomic, so nothing half-written is left.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from difflab.cli import main
from difflab.errors import UserError
from difflab.run import files, outputs


def _cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    run, folder, plain = str(tmp / "no-run"), tmp / "a.png", tmp / "plain"
    folder.mkdir()
    plain.write_text("x")
    return {
        "sample --out .txt": (["sample", run, "--out", str(tmp / "x.txt")], "ending in .png"),
        "sample --out a folder": (["sample", run, "--out", str(folder)], "is a folder"),
        "sample --save-npz .png": (["sample", run, "--save-npz", str(tmp / "x.png")], "ending in .npz"),
        "sample --out under a file": (["sample", run, "--out", str(plain / "x.png")], "below a file|is a file"),
        "edit --out .jpg": (["edit", "sdedit", run, "--from-class", "1", "--out", str(tmp / "e.jpg")], "ending in .png"),
        "edit --save-npz folder": (["edit", "noise", run, "--from-class", "1", "--save-npz", str(tmp)], "is a folder"),
        "evaluate --json .txt": (["evaluate", run, "--json", str(tmp / "r.txt")], "ending in .json"),
        "evaluate --images --out file": (["evaluate", "--images", str(tmp / "i.npz"), "--dataset", "mnist5k", "--out",
                                          str(plain)], "not a folder"),
        "report --out .png": (["report", run, "--out", str(tmp / "r.png")], "ending in .html"),
        "export --diffusers file": (["export", run, "--diffusers", str(plain)], "not a folder"),
        "distill --out file": (["distill", run, "--out", str(plain)], "not a folder"),
        "sweep --out file": (["sweep", str(tmp / "s.toml"), "--out", str(plain)], "not a folder"),
        "train --out file": (["train", "--out", str(plain), "--steps", "1"], "cannot write to run folder"),
    }


CASES = [
    "sample --out .txt", "sample --out a folder", "sample --save-npz .png", "sample --out under a file",
    "edit --out .jpg", "edit --save-npz folder", "evaluate --json .txt", "evaluate --images --out file",
    "report --out .png", "export --diffusers file", "distill --out file", "sweep --out file", "train --out file"]


@pytest.mark.parametrize("case", CASES)
def test_a_bad_output_is_refused_before_any_work(case, tmp_path, capsys):
    argv, expected = _cases(tmp_path)[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert any(e in err for e in expected.split("|")), err  # the output, not the missing run, is what is named
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_unwritable_place_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    def read_only(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(outputs.tempfile, "mkstemp", read_only)  # root ignores modes: simulate a read-only mount
    assert main(["sample", str(tmp_path / "no-run"), "--out", str(tmp_path / "new" / "x.png")]) == 2
    err = capsys.readouterr().err
    assert "cannot write in" in err and "Read-only file system" in err and "fix: write to a writable" in err
    assert not (tmp_path / "new").exists()


def test_a_failed_atomic_write_names_the_file_and_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    target.write_text("{}")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(OSError) as caught:
        files.write_json(target, {"a": 1})
    assert caught.value.filename == str(target) and caught.value.errno == errno.ENOSPC
    assert target.read_text() == "{}" and [p.name for p in tmp_path.iterdir()] == ["result.json"]
    line = outputs.write_error(caught.value)
    assert str(target) in line and "No space left" in line and "fix: free disk space" in line


def test_guard_turns_a_write_error_into_one_user_error():
    def command(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/out/x.png")

    with pytest.raises(UserError, match=r"cannot write /out/x.png \(No space left on device\); fix: free disk space"):
        outputs.guard(command)(None)


@pytest.mark.slow
def test_a_full_disk_during_export_is_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    pytest.importorskip("diffusers")

    def full(path, data, pause):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "_write_replace", full)
    assert main(["export", str(tiny_run.path), "--diffusers", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "No space left" in err and str(tmp_path / "out") in err


@pytest.mark.slow
def test_explain_checks_its_folder_before_sampling(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    (tmp_path / "file").write_text("x")
    assert main(["explain", "pca", str(run), "--n", "4", "--out", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_name_without_suffix_gets_the_outputs_own(tmp_path):
    """`--out edit` means edit.png (the writer's format), not a refusal; a wrong suffix is still refused."""
    assert outputs.check_file(tmp_path / "edit", "--out", (".png",)) == tmp_path / "edit.png"
    assert outputs.check_file(tmp_path / "r.htm", "--out", (".html", ".htm")) == tmp_path / "r.htm"
    (tmp_path / "taken").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        outputs.check_file(tmp_path / "taken", "--out", (".png",))
    with pytest.raises(UserError, match="ending in .png"):
        outputs.check_file(tmp_path / "x.jpg", "--out", (".png",))

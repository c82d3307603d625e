"""Issue 20 for `difflab edit`: inputs by class or index, outputs in RUN/edit/, one "wrote" line, full grids."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from difflab.cli import main
from difflab.edit import commands
from difflab.errors import UserError
from difflab.run import RunFolder

NAMES = ("T-shirt/top", "Trouser", "Sneaker")


def test_class_id_takes_an_id_or_a_name_and_names_the_range():
    assert commands.class_id(2, NAMES) == 2 and commands.class_id("1", NAMES) == 1
    assert commands.class_id("sneaker", NAMES) == 2 and commands.class_id("T-shirt/top", NAMES) == 0
    with pytest.raises(UserError, match=r"--from-class 3 is out of range; use a class id 0\.\.2"):
        commands.class_id("3", NAMES)
    with pytest.raises(UserError, match=r"'Boot' is not a class; use an id 0\.\.2 or a name \(T-shirt/top, Trouser"):
        commands.class_id("Boot", NAMES)


def test_first_of_class_is_the_first_test_image_of_that_class():
    data = SimpleNamespace(labels=torch.tensor([1, 0, 2, 1, 0]), class_names=NAMES)
    assert commands.first_of_class(data, 0) == 1 and commands.first_of_class(data, "Sneaker") == 2
    data.labels = torch.tensor([0, 0])
    with pytest.raises(UserError, match="has no image of class 2"):
        commands.first_of_class(data, 2)


def test_default_out_is_in_the_run_edit_folder_and_never_replaces_an_edit(tmp_path, monkeypatch):
    run = SimpleNamespace(folder=RunFolder(tmp_path / "run"))
    first = commands.default_out(run, "sdedit", ["class-3", "to-a seven", "seed0"])
    assert first == tmp_path / "run" / "edit" / "sdedit-class-3-to-a_seven-seed0.png" and first.parent.is_dir()
    first.write_bytes(b"png")
    assert commands.default_out(run, "sdedit", ["class-3", "to-a seven", "seed0"]).name == "sdedit-class-3-to-a_seven-seed0-2.png"
    monkeypatch.chdir(tmp_path)  # a --pipeline has no run folder: ./edit/, like `evaluate --images` writes ./eval/
    assert commands.default_out(SimpleNamespace(), "hybrid", ["far-1", "near-7"]) == commands.Path("edit/hybrid-far-1-near-7.png")


def test_from_dataset_is_a_documented_deprecated_alias(capsys):
    with pytest.raises(SystemExit):
        main(["edit", "sdedit", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--from-class C" in help_text and "--from-index I" in help_text
    assert "deprecated alias of --from-index" in help_text


@pytest.mark.parametrize("n, per_row", [(16, 3), (16, 4), (7, 3), (1, 3), (12, 3)])
def test_tuples_leave_no_blank_cell(n, per_row):
    images = torch.rand(n, 1, 4, 4) + 0.5  # never the -1 a padded cell held
    strip, cols = commands.tuples(images, images.flip(-1), per_row=per_row)
    assert strip.shape[0] * cols == n and strip.shape[1] == 2 * cols
    assert (strip.flatten(2).std(dim=-1) > 0).all()  # every cell holds an image


def test_the_hybrid_figure_has_no_blank_cell(tmp_path, monkeypatch):
    """16 hybrids (the CLI's default) at 3 per row left two empty tuples: six black cells."""
    shown = {}

    class FakeEditor:
        def hybrid(self, far, near, sigma, *, n, seed):
            return torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(seed)) * 2 - 1

    def capture(strip, out, *, columns, **_):
        shown["strip"], shown["columns"] = strip, columns
        return out

    monkeypatch.setattr(commands, "make_editor", lambda run, settings: FakeEditor())
    monkeypatch.setattr(commands, "save_strip", capture)
    commands.edit_hybrid(None, 1, 7, sigma=1.5, n=16, out=tmp_path / "h.png")
    strip = shown["strip"]  # (R, K, C, H, W)
    assert strip.shape[1] == len(shown["columns"])
    assert (strip.flatten(2).std(dim=-1) > 0).all(), "a blank cell"


def _copy(tiny_run, tmp_path):
    """Edits write into the run folder by default: a copy keeps the shared tiny run untouched."""
    return shutil.copytree(tiny_run.path, tmp_path / "run")


def test_from_class_picks_that_class_and_the_strip_goes_to_run_edit(tiny_run, tmp_path, capsys):
    from difflab.data import load_dataset

    run_dir, npz = _copy(tiny_run, tmp_path), tmp_path / "e.npz"
    assert main(["edit", "noise", str(run_dir), "--from-class", "3", "--t", "500", "--save-npz", str(npz)]) == 0
    out = capsys.readouterr().out.splitlines()
    written = run_dir / "edit" / "noise-class-3-seed0.png"
    assert out == [f"wrote {written} and images, t, inputs to {npz}"] and written.stat().st_size > 0
    test = load_dataset("mnist5k", split="test")
    first3 = int((test.labels == 3).nonzero()[0])
    assert np.array_equal(np.load(npz)["inputs"], commands.u8(test.images[first3 : first3 + 1]))


@pytest.mark.parametrize("extra, message", [
    (["--from-index", "99999"], "--from-index 99999 is out of range; the mnist5k test split has 0.."),
    (["--from-class", "12"], "--from-class 12 is out of range; use a class id 0..9"),
    (["--from-class", "dragon"], "--from-class 'dragon' is not a class"),
])
def test_input_mistakes_name_the_range(tiny_run, tmp_path, capsys, extra, message):
    assert main(["edit", "noise", str(tiny_run.path), *extra, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error: ") and message in err and err.count("\n") == 1, err

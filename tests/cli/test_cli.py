"""The command line as a user meets it: one job end to end, and one-line errors with exit code 2."""

import gzip
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from difflab.cli import main

TINY = ["--channels", "8,16", "--batch-size", "16", "--log-every", "5", "--sample-steps", "4",
        "--num-sample-grids", "1", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--steps", "20", "--no-eval", "--out", str(out), *TINY]) == 0
    return out


def test_train_then_sample_through_the_cli(run_dir, tmp_path, capsys):
    png, npz = tmp_path / "sevens.png", tmp_path / "s.npz"
    code = main(["sample", str(run_dir), "--label", "7", "--n", "16", "--steps", "5", "--guidance", "3",
                 "--seed", "0", "--out", str(png), "--save-npz", str(npz)])
    assert code == 0
    assert Image.open(png).size[0] > 28 * 4
    data = np.load(npz)
    assert data["images"].shape == (16, 28, 28, 1) and data["images"].dtype == np.uint8
    assert (data["labels"] == 7).all()
    assert "wrote 16 images" in capsys.readouterr().out


def test_sample_grid_has_one_row_per_class(run_dir, tmp_path):
    npz = tmp_path / "grid.npz"
    assert main(["sample", str(run_dir), "--n", "20", "--steps", "2", "--out", str(tmp_path / "g.png"),
                 "--save-npz", str(npz)]) == 0
    assert np.load(npz)["labels"].tolist() == sorted(list(range(10)) * 2)


def test_bf16_flags_train_and_sample(run_dir, tmp_path):
    """`--precision bf16` for training (autocast forward) and for sampling and editing (autocast network)."""
    out = tmp_path / "bf16"
    assert main(["train", "--steps", "6", "--no-eval", "--precision", "bf16", "--out", str(out), *TINY]) == 0
    npz = tmp_path / "b.npz"
    assert main(["sample", str(out), "--n", "10", "--steps", "2", "--precision", "bf16",
                 "--out", str(tmp_path / "b.png"), "--save-npz", str(npz)]) == 0
    assert np.load(npz)["images"].shape == (10, 28, 28, 1)
    assert main(["edit", "sdedit", str(run_dir), "--from-dataset", "1", "--label", "3", "--precision", "bf16",
                 "--out", str(tmp_path / "edit")]) == 0


def test_console_script_runs(run_dir, tmp_path):
    result = subprocess.run([sys.executable, "-m", "difflab", "sample", str(run_dir), "--n", "4", "--steps", "2",
                             "--out", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.png").is_file()


def _truncated_idx(tmp_path):
    folder = tmp_path / "idx"
    folder.mkdir()
    header = bytes([0, 0, 8, 3]) + (60000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + b"\0" * 100))
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + (60000).to_bytes(4, "big")))
    return ["train", "--dataset", "mnist", "--data-dir", str(folder), "--steps", "1", "--out", str(tmp_path / "r")]


def _folder_with_text_file(tmp_path):
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        Image.new("L", (28, 28)).save(tmp_path / "imgs" / label / "x.png")
    (tmp_path / "imgs" / "b" / "notes.txt").write_text("not an image")
    return ["train", "--dataset", f"folder:{tmp_path / 'imgs'}", "--steps", "1", "--out", str(tmp_path / "r")]


BAD = {
    "unknown dataset": (lambda p, r: ["train", "--dataset", "imagenet", "--out", str(p / "r")], "unknown dataset 'imagenet'"),
    "steps 0": (lambda p, r: ["train", "--steps", "0", "--out", str(p / "r")], "--steps must be positive"),
    "non-numeric lr": (lambda p, r: ["train", "--lr", "fast"], "'fast' is not a valid float"),
    "label out of range": (lambda p, r: ["sample", str(r), "--label", "10", "--out", str(p / "x.png")], "label 10 is out of range"),
    "negative guidance": (lambda p, r: ["sample", str(r), "--guidance", "-1", "--out", str(p / "x.png")], "--guidance must be >= 0"),
    "sample steps 0": (lambda p, r: ["sample", str(r), "--steps", "0", "--out", str(p / "x.png")], "--steps must be at least 1"),
    "unknown solver": (lambda p, r: ["sample", str(r), "--solver", "euler"], "invalid choice: 'euler'"),
    "missing run": (lambda p, r: ["sample", str(p / "nope")], "run folder .* not found"),
    "truncated idx": (lambda p, r: _truncated_idx(p), "train-images-idx3-ubyte.gz"),
    "non-image in folder": (lambda p, r: _folder_with_text_file(p), "notes.txt"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_code_2(case, run_dir, tmp_path, capsys):
    make_args, message = BAD[case]
    code = main(make_args(tmp_path, run_dir))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("difflab: error:") and err.count("\n") == 1, err
    assert pytest.importorskip("re").search(message, err), err
    assert not (tmp_path / "x.png").exists()

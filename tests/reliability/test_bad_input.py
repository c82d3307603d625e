"""Guarantee 7: bad input anywhere it enters is one line, exit code 2, and nothing written or lost.

Not here yet: masks and edit timesteps (the `edit` command does not exist yet), images of the wrong
size for a run (no command takes user images for a run yet).
"""

from __future__ import annotations

import gzip
import io
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from difflab.cli import main
from difflab.training.config import TrainConfig
from difflab.training.trainer import Trainer


def idx(array: np.ndarray, *, magic: bytes | None = None) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = magic or bytes([0, 0, 0x08, array.ndim])
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def mnist_dir(tmp: Path, images: bytes | None = None, labels: bytes | None = None) -> list[str]:
    """A data dir with MNIST-named IDX files (good ones unless replaced)."""
    folder = tmp / "idx"
    folder.mkdir()
    good_images, good_labels = idx(np.zeros((4, 28, 28))), idx(np.arange(4))
    (folder / "train-images-idx3-ubyte").write_bytes(good_images if images is None else images)
    (folder / "train-labels-idx1-ubyte").write_bytes(good_labels if labels is None else labels)
    return ["train", "--dataset", "mnist", "--data-dir", str(folder), "--steps", "1", "--out", str(tmp / "out")]


def image_folder(tmp: Path, extra: dict[str, bytes] | None = None, *, classes=("a", "b")) -> list[str]:
    for label in classes:
        (tmp / "imgs" / label).mkdir(parents=True)
        Image.new("L", (28, 28)).save(tmp / "imgs" / label / "x.png")
    for name, data in (extra or {}).items():
        (tmp / "imgs" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / "imgs" / name).write_bytes(data)
    return ["train", "--dataset", f"folder:{tmp / 'imgs'}", "--steps", "1", "--out", str(tmp / "out")]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bomb_png(side: int = 9500) -> bytes:
    """A valid all-black 8-bit gray PNG of side x side pixels (90 M > Pillow's limit), ~90 kB on disk."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    pixels = zlib.compress(bytes((side + 1) * side), 9)  # each row: filter byte 0, then zeros
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def truncated_png() -> bytes:
    noise = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(noise).save(out, format="PNG")
    return out.getvalue()[: len(out.getvalue()) // 2]


def write_then(path: Path, text: str, argv: list[str]) -> list[str]:
    path.write_text(text)
    return argv


def cifar_dir(tmp: Path, data=None, labels=None, raw: bytes | None = None) -> list[str]:
    folder = tmp / "c" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    good = {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}
    batch = {"data": good["data"] if data is None else data, "labels": good["labels"] if labels is None else labels}
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}, protocol=4))
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(raw if raw is not None and i == 3 else pickle.dumps(batch, protocol=4))
    return ["train", "--dataset", "cifar10", "--data-dir", str(tmp / "c"), "--steps", "1", "--out", str(tmp / "out")]


def train(*args: str):
    return lambda t, r: ["train", *args, "--out", str(t / "out")]


def sample(*args: str):
    return lambda t, r: ["sample", str(r), *args, "--out", str(t / "x.png")]


def damaged_run(t: Path, r: Path, name: str, data: bytes) -> list[str]:
    shutil.copytree(r, t / "run")
    (t / "run" / name).write_bytes(data)
    return ["sample", str(t / "run"), "--n", "1", "--steps", "1", "--out", str(t / "x.png")]


def resume_run(t: Path, r: Path, *args: str, drop: str | None = None) -> list[str]:
    shutil.copytree(r, t / "run")
    if drop:
        shutil.rmtree(t / "run" / drop)
    return ["train", "--resume", str(t / "run"), *args, "--no-eval"]


GZ = gzip.compress(idx(np.zeros((4, 28, 28))))
CASES = {
    # IDX files
    "idx truncated": (lambda t, r: mnist_dir(t, images=idx(np.zeros((4, 28, 28)))[:-100]), "truncated"),
    "idx wrong magic": (lambda t, r: mnist_dir(t, images=b"PK\x03\x04" + bytes(100)), "not an IDX file"),
    "idx float data type": (lambda t, r: mnist_dir(t, images=idx(np.zeros((4, 28, 28)), magic=bytes([0, 0, 0x0D, 3]))), "data type 0x0D"),
    "idx corrupt gzip": (lambda t, r: mnist_dir(t, images=GZ[:20] + b"garbage" * 10), "damaged gzip|not an IDX"),
    "idx empty file": (lambda t, r: mnist_dir(t, images=b""), "not an IDX file"),
    "idx extra bytes": (lambda t, r: mnist_dir(t, images=idx(np.zeros((4, 28, 28))) + b"xx"), "extra bytes"),
    "idx count mismatch": (lambda t, r: mnist_dir(t, labels=idx(np.arange(3))), "holds 4 images but"),
    "idx labels out of range": (lambda t, r: mnist_dir(t, labels=idx(np.array([0, 1, 2, 12]))), "labels must lie in 0..9"),
    "idx labels as images": (lambda t, r: mnist_dir(t, images=idx(np.arange(4))), "expected images"),
    # image folders
    "folder non-image": (lambda t, r: image_folder(t, {"b/notes.txt": b"not an image"}), "notes.txt: not an image"),
    "folder 0-byte file": (lambda t, r: image_folder(t, {"b/empty.png": b""}), "empty file"),
    "folder truncated png": (lambda t, r: image_folder(t, {"b/cut.png": truncated_png()}), "cut.png: damaged image"),
    "folder decompression bomb": (lambda t, r: image_folder(t, {"b/huge.png": bomb_png()}), "too many pixels"),
    "folder stray top file": (lambda t, r: image_folder(t, {"readme.txt": b"hi"}), "a file at the top"),
    "folder nested folder": (lambda t, r: image_folder(t, {"b/deeper/y.png": b""}), "a folder inside class folder"),
    "folder no classes": (lambda t, r: image_folder(t, classes=()) if (t / "imgs").mkdir() is None else [], "no class sub-folders"),
    "folder not a directory": (train("--dataset", "folder:/nonexistent/imgs", "--steps", "1"), "not a directory"),
    "folder image size 0": (lambda t, r: image_folder(t) + ["--image-size", "0"], "must be a positive integer|at least 1"),
    # CIFAR batches
    "cifar wrong shape": (lambda t, r: cifar_dir(t, data=np.zeros((2, 100), np.uint8)), r"must be a \(N, 3072\)"),
    "cifar labels out of range": (lambda t, r: cifar_dir(t, labels=[0, 10]), "labels must lie in 0..9"),
    "cifar label count": (lambda t, r: cifar_dir(t, labels=[0, 1, 2]), "2 images but"),
    "cifar not a dict": (lambda t, r: cifar_dir(t, raw=pickle.dumps([1, 2], protocol=4)), "is a dict"),
    "cifar garbage": (lambda t, r: cifar_dir(t, raw=b"\x00garbage" * 50), "not a valid CIFAR-10 batch"),
    # training options
    "train steps 0": (train("--steps", "0"), "--steps must be positive"),
    "train negative minutes": (train("--minutes", "-1"), "--minutes must be positive"),
    "train batch size 0": (train("--batch-size", "0", "--steps", "1"), "--batch-size must be at least 1"),
    "train non-numeric lr": (train("--lr", "fast"), "'fast' is not a valid float"),
    "train non-numeric steps": (train("--steps", "1e3x"), "'1e3x' is not a valid int"),
    "train bad channels": (train("--channels", "8,x"), "not a comma-separated list of integers"),
    "train cond dropout 1.5": (train("--cond-dropout", "1.5", "--steps", "1"), "--cond-dropout must be in"),
    "train unknown solver": (train("--solver", "euler", "--steps", "1"), "unknown solver 'euler'"),
    "train unknown schedule": (train("--schedule", "square", "--steps", "1"), "unknown schedule 'square'"),
    "train T 0": (train("--num-timesteps", "0", "--steps", "1"), "--num-timesteps must be at least 1"),
    "train negative guidance": (train("--guidance", "-2", "--steps", "1"), "--guidance must be >= 0"),
    "train unknown dataset": (train("--dataset", "imagenet", "--steps", "1"), "unknown dataset 'imagenet'"),
    "train image size mnist5k": (train("--image-size", "3", "--steps", "1"), "--image-size 3 resizes only emoji and folder"),
    "train data dir mnist5k": (train("--data-dir", "/tmp", "--steps", "1"), "--data-dir /tmp is not read for mnist5k"),
    "train odd attention width": (train("--channels", "8,18", "--attention-levels", "1", "--steps", "1"),
                                  "width.s. 18 of --channels 8,18 are not multiples of 4"),
    "train attention level out of range": (train("--attention-levels", "5", "--steps", "1"), "levels are 0..2"),
    "train unknown flag": (train("--stepz", "3"), "unrecognized arguments: --stepz"),
    "train unknown config key": (lambda t, r: write_then(t / "c.json", '{"lrr": 1}', ["train", "--config", str(t / "c.json")]), "unknown config key"),
    "train unwritable out": (lambda t, r: write_then(t / "f", "", ["train", "--out", str(t / "f" / "run"), "--steps", "1"]), "cannot write to run folder"),
    "resume missing folder": (lambda t, r: ["train", "--resume", str(t / "nope")], "no such run folder"),
    "resume without state": (lambda t, r: resume_run(t, r, drop="state"), "no resumable state"),
    "resume other channels": (lambda t, r: resume_run(t, r, "--channels", "8,32"), r"channels: \[8, 16\] -> \[8, 32\]"),
    # sampling options and run folders
    "sample unknown solver": (sample("--solver", "euler"), "invalid choice: 'euler'"),
    "sample steps 0": (sample("--steps", "0"), "--steps must be at least 1"),
    "sample negative guidance": (sample("--guidance", "-1"), "--guidance must be >= 0"),
    "sample negative eta": (sample("--eta", "-0.5"), "--eta must be >= 0"),
    "sample label out of range": (sample("--label", "10"), "label 10 is out of range"),
    "sample n 0": (sample("--n", "0"), "--n must be at least 1"),
    "sample guidance nan": (sample("--guidance", "nan"), "'nan' is not a finite number"),
    "distill minutes per round nan": (lambda t, r: ["distill", str(r), "--minutes-per-round", "nan"], "'nan' is not a finite"),
    "distill lr inf": (lambda t, r: ["distill", str(r), "--lr", "inf"], "'inf' is not a finite number"),
    "sample non-numeric seed": (sample("--seed", "abc"), "'abc' is not a valid int"),
    "sample missing run": (lambda t, r: ["sample", str(t / "nope"), "--out", str(t / "x.png")], "run folder .* not found"),
    "sample truncated weights": (lambda t, r: damaged_run(t, r, "ema.safetensors", (r / "ema.safetensors").read_bytes()[:200]), "not a valid safetensors file"),
    "sample model.json not json": (lambda t, r: damaged_run(t, r, "model.json", b"{oops"), "is not valid JSON"),
    "sample config.json not json": (lambda t, r: damaged_run(t, r, "config.json", b"\xff\xfe"), "(?i)is not valid JSON"),
    "evaluate n below classes": (lambda t, r: ["evaluate", str(r), "--n", "3"], "--n must be at least"),
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    config = TrainConfig(channels=(8, 16), batch_size=8, steps=1, minutes=None, num_sample_grids=0, sample_steps=2,
                         checkpoint_minutes=100.0)
    return Trainer(config, tmp_path_factory.mktemp("bad-input") / "run", show_progress=False).run()


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_table_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_nothing_written(case, run_dir, tmp_path, capsys):
    make_args, message = CASES[case]
    argv = make_args(tmp_path, run_dir)
    inputs, run_before = tree(tmp_path), tree(run_dir)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("difflab: error:") and err.count("\n") == 1, err
    assert pytest.importorskip("re").search(message, err), err
    assert tree(tmp_path) == inputs and tree(run_dir) == run_before  # nothing written, nothing lost
    assert not (tmp_path / "out").exists()

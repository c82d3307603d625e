"""Issue 19, class 5: data edge cases are refused before training, and end-of-run work is scaled to the data.

A split without images is refused where data enters (`data/sources.py: load_dataset`); a dataset too small
for a judge still trains and finishes, its judge and guidance sweep skipped with the reason printed and kept in
RUN/eval/end_of_run.json (the report shows it); thousands of classes keep grids and the judge bounded
(`training/end.py`, `training/sample_grids.py`).
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from difflab.cli import main
from difflab.training import end
from difflab.training.sample_grids import GRID_CLASSES, ShownClasses, shown_classes


def idx(array: np.ndarray) -> bytes:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def idx_args(tmp: Path, images: bytes, labels: bytes) -> list[str]:
    folder = tmp / "idx"
    folder.mkdir()
    (folder / "train-images-idx3-ubyte").write_bytes(images)
    (folder / "train-labels-idx1-ubyte").write_bytes(labels)
    return ["train", "--dataset", "mnist", "--data-dir", str(folder), "--steps", "2", "--no-progress",
            "--out", str(tmp / "out")]


EMPTY = {
    "idx zero items": (idx(np.zeros((0, 28, 28))), idx(np.zeros(0))),
    "idx zero items, gzipped": (gzip.compress(idx(np.zeros((0, 28, 28)))), gzip.compress(idx(np.zeros(0)))),
    "idx header claims more than its bytes": (idx(np.zeros((4, 28, 28)))[:-28], idx(np.zeros(4))),
    "idx labels count differs": (idx(np.zeros((4, 28, 28))), idx(np.zeros(5))),
}


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_degenerate_idx_files_are_one_line_before_training(case, tmp_path, capsys):
    images, labels = EMPTY[case]
    assert main(idx_args(tmp_path, images, labels)) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # refused before a run folder was made


def test_an_empty_split_names_the_problem(tmp_path, capsys):
    main(idx_args(tmp_path, idx(np.zeros((0, 28, 28))), idx(np.zeros(0))))
    assert "holds no images" in capsys.readouterr().err


def test_grids_show_a_bounded_number_of_classes():
    assert shown_classes(7) == list(range(7))
    picked = shown_classes(10_000)
    assert len(picked) == GRID_CLASSES and picked[0] == 0 and picked[-1] == 9_999
    asked = []
    run = SimpleNamespace(num_classes=10_000, sample=lambda labels, **kw: asked.append(labels) or labels)
    view = ShownClasses.of(run)
    assert view.num_classes == GRID_CLASSES
    view.sample(torch.tensor([0, 9]))
    assert asked[0].tolist() == [0, 9_999]  # the view's ids map to the run's


def _fake_run(num_classes: int):
    config = SimpleNamespace(dataset="folder:x", data_dir=None, image_size=None)
    folder = SimpleNamespace(read_distill=lambda: None)
    return SimpleNamespace(num_classes=num_classes, config=config, spec=SimpleNamespace(samplable=True),
                           is_text=False, folder=folder)


def test_end_of_run_work_is_bounded_for_thousands_of_classes(monkeypatch):
    monkeypatch.setattr(end, "_judge_data", lambda *a, **k: (None, 10_000, False))
    todo = end.plan(_fake_run(10_000), evaluate=True)
    assert len(todo.judge_classes) * todo.judge_per_class <= end.JUDGE_IMAGES
    assert todo.sweep is None and "guidance sweep" in todo.skipped
    assert "sample grids" in todo.scaled and "judge" in todo.scaled
    ten = end.plan(_fake_run(10), evaluate=True)  # the usual run keeps its usual amounts
    assert (ten.judge_classes, ten.judge_per_class, ten.sweep, ten.skipped) == (list(range(10)), 100, {}, {})


def test_too_small_for_a_judge_is_a_reason_not_a_crash(tmp_path):
    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), 40 * i).save(tmp_path / "imgs" / label / f"{i}.png")
    reason = end.judge_skip_reason(f"folder:{tmp_path / 'imgs'}")
    assert reason and ("holds no images" in reason or "training images" in reason)


@pytest.mark.slow
def test_a_one_class_folder_of_rgba_photos_trains_and_says_why_there_is_no_judge(tmp_path, capsys):
    photos = tmp_path / "roses" / "rose"
    photos.mkdir(parents=True)
    for i in range(12):  # RGBA cut-outs of another aspect: laid over white and centre-cropped
        Image.new("RGBA", (24, 16), (40 * (i % 6), 0, 90, 255 if i % 2 else 0)).save(photos / f"{i}.png")
    out = tmp_path / "run"
    code = main(["train", "--dataset", f"folder:{tmp_path / 'roses'}", "--steps", "2", "--no-progress",
                 "--channels", "8,16", "--batch-size", "4", "--sample-steps", "2", "--num-sample-grids", "0",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err and "has one class" in err
    assert (out / "samples" / "final.png").is_file()
    assert "one class" in (out / "eval" / "end_of_run.json").read_text()


def test_a_three_image_folder_trains_and_finishes_with_the_judge_skipped(tmp_path, capsys):
    for label, shades in (("a", (0, 255)), ("b", (128,))):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i, shade in enumerate(shades):
            Image.new("L", (16, 16), shade).save(tmp_path / "imgs" / label / f"{i}.png")
    out = tmp_path / "run"
    code = main(["train", "--dataset", f"folder:{tmp_path / 'imgs'}", "--steps", "2", "--no-progress",
                 "--channels", "8,16", "--batch-size", "4", "--sample-steps", "2", "--num-sample-grids", "0",
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err and "judge skipped" in err
    assert (out / "samples" / "final.png").is_file()
    assert "judge skipped" in (out / "eval" / "end_of_run.json").read_text()
    assert "judge skipped" in (out / "report.html").read_text()

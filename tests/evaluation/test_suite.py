"""The suite end to end (tiny run, tiny IDK judges) and `difflab evaluate` on image files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from difflab.cli import main
from difflab.data import load_dataset
from difflab.evaluation.suite import EvalConfig, evaluate_images, evaluate_run
from difflab.run import Run, RunFolder

TINY = EvalConfig(kid_subsets=5, idk_fractions=(0.1,), idk_epochs=1)


@pytest.fixture(scope="module")
def suite_result(tiny_run, mnist_judge, tmp_path_factory):
    run = Run.load(tiny_run.path)
    run.folder = RunFolder(tmp_path_factory.mktemp("copy"))  # results go here: the shared run folder stays read-only
    run.path = run.folder.path
    return evaluate_run(run, n=40, config=TINY, steps=2), run


def test_json_records_what_makes_two_evaluations_comparable(suite_result):
    result, run = suite_result
    saved = json.loads((run.path / "eval" / f"{result['name']}.json").read_text())
    assert saved["n"] == 40 and saved["seeds"] == {"sampling": 0, "evaluation": 0}
    assert saved["sampler"]["steps"] == 2 and saved["judge_real_accuracy"] > 0.9
    d = saved["distribution"]
    assert d["n_floor"] == 40 and d["floor_fd"] < d["fd"]  # a 60-step model is far from real digits
    assert d["n_reference"] == TINY.reference_size == 2000  # fixed: the same 2,000 train images at every n
    assert 0 <= d["precision"] <= 1 and set(saved["per_class_accuracy"]) == set(run.class_names)
    assert "inception_skipped" in saved or "inception" in saved
    assert set(saved["idk"]["accuracy_at_coverage"]) == {"judge max-softmax", "idk 10%"}


def test_pictures_are_written(suite_result):
    result, run = suite_result
    folder = run.path / "eval" / result["name"]
    for name in ("confusion.png", "closest_pairs.png", "accuracy_coverage.png", "embedding_map.png", "embeddings.npy"):
        assert (folder / name).stat().st_size > 500, name


def test_same_images_give_identical_numbers(mnist_judge, tmp_path):
    test = load_dataset("mnist5k", split="test")  # sorted by class: draw 100 at random
    images = test.images[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:100]]
    first, second = (evaluate_images(images, None, "mnist5k", out=tmp_path, name=f"e{i}", config=TINY) for i in (1, 2))
    strip = lambda r: {k: v for k, v in r.items() if k not in ("name", "evaluation_seconds", "written")}
    assert strip(first) == strip(second)
    d = first["distribution"]  # real held-out digits: near the real floor (noise images give FD in the hundreds)
    assert d["fd"] < 3 * d["floor_fd"] and d["precision"] > 0.6 and "accuracy" not in first  # 7.6 vs 4.8 floor


def test_cli_evaluates_npz_and_flat_folder(mnist_judge, tmp_path, capsys):
    test = load_dataset("mnist5k", split="test")
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:50]  # test is sorted by class
    pixels = ((test.images[pick, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
    np.savez(tmp_path / "s.npz", images=pixels, labels=np.full(50, -1))
    assert main(["evaluate", "--images", str(tmp_path / "s.npz"), "--dataset", "mnist5k", "--out",
                 str(tmp_path / "o"), "--no-pictures", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "FD (judge features)" in out and "Inception" in out and "reference: a fixed 2000 real train images" in out
    from_npz = json.loads((tmp_path / "r.json").read_text())
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, p in enumerate(pixels):
        Image.fromarray(p).save(flat / f"{i:03d}.png")
    assert main(["evaluate", "--images", str(flat), "--dataset", "mnist5k", "--out", str(tmp_path / "o"),
                 "--no-pictures", "--json", str(tmp_path / "f.json")]) == 0
    from_folder = json.loads((tmp_path / "f.json").read_text())["distribution"]
    assert from_folder.keys() == from_npz["distribution"].keys()  # the same pixels: the same numbers, up to
    for key, value in from_npz["distribution"].items():  # sqrtm's last digits (BLAS reductions vary by thread)
        assert from_folder[key] == pytest.approx(value, rel=1e-5, abs=1e-9), key


@pytest.mark.parametrize("argv, message", [
    (["evaluate"], "give a run folder or --images"),
    (["evaluate", "--images", "x.npz"], "needs --dataset"),
    (["evaluate", "--images", "missing.npz", "--dataset", "mnist5k"], "not an .npz file or a folder"),
])
def test_cli_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_images_of_the_wrong_shape_are_refused(tmp_path, capsys):
    np.savez(tmp_path / "big.npz", images=np.zeros((30, 32, 32), np.uint8))
    assert main(["evaluate", "--images", str(tmp_path / "big.npz"), "--dataset", "mnist5k"]) == 2
    assert "do not match the dataset's (1, 28, 28)" in capsys.readouterr().err

"""`sample --out-dir`: the folder the `datasets` ImageFolder loader and torch-fidelity read as they are."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from difflab.cli import main


@pytest.fixture(scope="module")
def image_dir(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("folder") / "imgs"
    code = main(["sample", str(tiny_run.path), "--label", "3,7", "--n", "4", "--steps", "2", "--seed", "5",
                 "--out", str(out.parent / "grid.png"), "--save-npz", str(out.parent / "s.npz"),
                 "--out-dir", str(out)])
    assert code == 0
    return out


def test_layout_and_metadata(image_dir):
    rows = [json.loads(line) for line in (image_dir / "metadata.jsonl").read_text().splitlines()]
    assert [r["file_name"] for r in rows] == ["3/00000.png", "3/00001.png", "7/00002.png", "7/00003.png"]
    assert {r["seed"] for r in rows} == {5} and {r["steps"] for r in rows} == {2}
    npz = np.load(image_dir.parent / "s.npz")["images"]  # (N, H, W, 1), the same images
    for i, row in enumerate(rows):
        assert np.array_equal(np.asarray(Image.open(image_dir / row["file_name"])), npz[i, ..., 0])


def test_datasets_imagefolder_reads_it(image_dir, tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("imagefolder", data_dir=str(image_dir), split="train", cache_dir=str(tmp_path))
    assert ds["label"][:] == [3, 3, 7, 7] and ds["class_name"][:] == ["3", "3", "7", "7"]
    npz = np.load(image_dir.parent / "s.npz")["images"]
    assert np.array_equal(np.asarray(ds[2]["image"]), npz[2, ..., 0])


def fidelity_glob(path, deep: bool, exts: str = "png,jpg,jpeg") -> list[str]:
    """torch_fidelity.utils.glob_samples_paths (v0.4.0) reduced to its file rule: os.walk, extension match,
    top level only unless samples_find_deep."""
    files = []
    for root, _, names in os.walk(path):
        if not deep and os.path.realpath(root) != os.path.realpath(path):
            continue
        files += [os.path.join(root, f) for f in names if os.path.splitext(f)[1].lower()[1:] in exts.split(",")]
    return sorted(files)


def test_torch_fidelity_finds_every_image(image_dir):
    try:  # torch-fidelity imports torchvision, which has no build for torch 2.13 here
        from torch_fidelity.utils import glob_samples_paths
    except ImportError:
        glob_samples_paths = None
    if glob_samples_paths is not None:
        found = glob_samples_paths(str(image_dir), True, "png,jpg,jpeg", verbose=False)
    else:
        found = fidelity_glob(image_dir, deep=True)
    assert len(found) == 4 and all(f.endswith(".png") for f in found)
    assert fidelity_glob(image_dir, deep=False) == []  # hence samples_find_deep=True in the docs


def test_out_dir_is_never_overwritten(image_dir, tiny_run, capsys):
    assert main(["sample", str(tiny_run.path), "--n", "2", "--out-dir", str(image_dir)]) == 2
    assert "already holds generated images" in capsys.readouterr().err

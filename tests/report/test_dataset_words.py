"""Words from the dataset: "digits" only for digit sets; garments, emoji, images for the others."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from difflab.api import quality_line
from difflab.data.nouns import noun


@pytest.mark.parametrize(("spec", "many", "one"), [
    ("mnist5k", "digits", "digit"), ("mnist", "digits", "digit"), ("fashion-mnist", "garments", "garment"),
    ("emoji", "emoji", "emoji"), ("emoji:subgroup:50", "emoji", "emoji"), ("cifar10", "images", "image"),
    ("folder:/data/digits", "images", "image"), ("kmnist", "characters", "character"), (None, "images", "image"),
])
def test_noun_of_each_dataset(spec, many, one):
    assert noun(spec) == many and noun(spec, singular=True) == one


def test_quality_line_names_the_datasets_pictures():
    result = {"accuracy": 0.912, "judge_real_accuracy": 0.934, "per_class_accuracy": {str(i): 0.9 for i in range(10)}}
    garments = quality_line({**result, "judge_dataset": "fashion-mnist"})
    assert garments == ("generated garments: 91.2% recognised as the requested class "
                        "(judge accuracy on real garments: 93.4%)")  # class names 0-9 no longer mean digits
    assert "generated digits:" in quality_line({**result, "judge_dataset": "mnist5k"})
    assert "real emoji" in quality_line({**result, "judge_dataset": "emoji"})


def _folder(root: Path) -> Path:
    for c, colour in enumerate([(220, 40, 40), (40, 40, 220)]):
        (root / ("roses", "violets")[c]).mkdir(parents=True, exist_ok=True)
        for i in range(10):
            Image.new("RGB", (8, 8), tuple(min(255, v + 4 * i) for v in colour)).save(root / ("roses", "violets")[c] / f"{i}.png")
    return root


def test_report_of_a_folder_dataset_never_says_digits(tmp_path):
    import difflab

    run = difflab.train(dataset=f"folder:{_folder(tmp_path / 'flowers')}", out=tmp_path / "run", progress=False,
                        evaluate=False, channels=(8, 16), steps=2, batch_size=8, log_every=1, warmup_steps=1,
                        num_sample_grids=0, sample_steps=2, checkpoint_minutes=100.0)
    page = run.folder.report_path.read_text()
    text = re.sub(r'src="data:[^"]*"', "", page)  # the words, not the pictures' base64
    assert "roses" in text or "violets" in text or "images" in text
    assert [m.group(0) for m in re.finditer(r".{60}digit.{40}", text, re.I)] == []

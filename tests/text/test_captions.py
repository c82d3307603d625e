"""Captions: templates per class, per-image choices, unseen paraphrases, image-folder metadata.jsonl."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from difflab.data import from_uint8, load_dataset
from difflab.errors import UserError
from difflab.text.captions import DIGIT_TEMPLATES, captions_for, class_prompts, paraphrases


def test_digit_templates_name_the_digit():
    prompts = class_prompts([str(d) for d in range(10)])
    assert len(prompts) == 10 and len(prompts[7]) == len(DIGIT_TEMPLATES)
    assert all("seven" in p or "7" in p for p in prompts[7])
    assert not any("seven" in p or "7" in p for p in prompts[1])


def test_object_templates_are_readable():
    prompts = class_prompts(["T-shirt/top", "Ankle boot"])
    assert prompts[0][0] == "a photo of a t-shirt or top" and prompts[1][0] == "a photo of a ankle boot"


def test_paraphrases_are_never_trained_on():
    names = [str(d) for d in range(10)]
    trained = {p for ps in class_prompts(names) for p in ps}
    unseen = [p for ps in paraphrases(names) for p in ps]
    assert len(unseen) == 100 and not trained & set(unseen)


def test_each_image_may_use_its_own_class_templates():
    data = load_dataset("mnist5k")
    caps = captions_for(data)
    assert caps.choices.shape == (len(data), len(DIGIT_TEMPLATES)) and (caps.counts() == len(DIGIT_TEMPLATES)).all()
    for i in (0, 17, 301):
        digit = int(data.labels[i])
        assert set(caps.texts[j] for j in caps.choices[i].tolist()) == set(class_prompts(data.class_names)[digit])


def _write_png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(path)


def test_folder_captions_from_metadata(tmp_path):
    for i, cls in enumerate(["cats", "dogs"]):
        for j in range(2):
            _write_png(tmp_path / cls / f"{j}.png", 40 * i + j)
    rows = [{"file_name": f"{c}/{j}.png", "text": f"photo {j} of {c}"} for c in ("cats", "dogs") for j in range(2)]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    from difflab.data.folder import load_image_folder

    data = load_image_folder(tmp_path)
    assert data.captions == ("photo 0 of cats", "photo 1 of cats", "photo 0 of dogs", "photo 1 of dogs")
    caps = captions_for(data.subset(torch.tensor([3, 0])))
    assert [caps.texts[int(c)] for c in caps.choices[:, 0]] == ["photo 1 of dogs", "photo 0 of cats"]


def test_flat_folder_with_metadata_is_one_class(tmp_path):
    for j in range(3):
        _write_png(tmp_path / f"{j}.png", j)
    (tmp_path / "metadata.jsonl").write_text("".join(json.dumps({"file_name": f"{j}.png", "text": f"t{j}"}) + "\n" for j in range(3)))
    from difflab.data.folder import load_image_folder

    data = load_image_folder(tmp_path)
    assert len(data) == 3 and data.num_classes == 1 and data.captions == ("t0", "t1", "t2")


@pytest.mark.parametrize("lines, message", [
    (['{"file_name": "a/0.png", "text": "x"}'], "without a caption"),
    (['{"file_name": "a/0.png", "text": "x"}', "{oops"], "line 2: not JSON"),
    (['{"text": "x"}'], "file_name"),
    (['{"file_name": "a/0.png", "text": 5}', '{"file_name": "a/1.png", "text": "y"}'], "must be a string"),
])
def test_bad_metadata_is_one_clear_error(tmp_path, lines, message):
    for j in range(2):
        _write_png(tmp_path / "a" / f"{j}.png", j)
    (tmp_path / "metadata.jsonl").write_text("\n".join(lines))
    from difflab.data.folder import load_image_folder

    with pytest.raises(UserError, match=message):
        load_image_folder(tmp_path)


def test_metadata_without_text_means_no_captions(tmp_path):
    _write_png(tmp_path / "a" / "0.png", 1)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": "a/0.png", "label": 0}))
    from difflab.data.folder import load_image_folder

    assert load_image_folder(tmp_path).captions is None


def test_captions_must_match_images():
    with pytest.raises(UserError, match="captions"):
        from_uint8(np.zeros((2, 4, 4), np.uint8), [0, 0], ("a",), "x", captions=("only one",))

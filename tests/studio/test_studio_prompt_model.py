"""The studio on a prompt model (a tiny text run): captions in, images out; class-only actions say so in one line."""

from __future__ import annotations

import pytest
import torch

from difflab.errors import UserError
from difflab.studio.handlers import Page
from difflab.studio.session import Studio


@pytest.fixture(scope="module")
def text_page(text_run, tmp_path_factory) -> Page:
    pytest.importorskip("transformers", reason="the text extra is not installed: pip install 'difflab[text]'")
    return Page(Studio(text_run.path, out=tmp_path_factory.mktemp("text-page-out")), text_run.path.parent)


def test_a_caption_generates_and_the_same_seed_gives_the_same_images(text_page, text_run, digest):
    before = digest(text_run.path)
    updates = list(text_page.generate(None, "a handwritten seven", 3, "dpm++", 3, 2.0, "cfg", 0))
    grid, png, npz, generated, status = updates[-1][1]
    assert generated.prompts == ["a handwritten seven"] * 3 and generated.labels is None
    assert generated.images.shape == (3, 1, 28, 28) and torch.isfinite(generated.images).all()
    assert grid.ndim == 2 and png.endswith(".png") and npz.endswith(".npz") and "3 images" in status
    assert str(text_page.studio.out) in png and str(text_run.path) not in npz  # downloads go outside the run
    other = list(text_page.generate(None, "a handwritten two", 3, "dpm++", 3, 2.0, "cfg", 0))[-1][1][3]
    again = list(text_page.generate(None, "a handwritten seven", 3, "dpm++", 3, 2.0, "cfg", 0))[-1][1][3]
    assert torch.equal(again.images, generated.images) and not torch.equal(other.images, generated.images)
    assert digest(text_run.path) == before  # nothing written into the run


def test_explain_of_a_prompt_sample_is_one_line(text_page):
    generated = list(text_page.generate(None, "a handwritten one", 1, "dpm++", 3, 2.0, "cfg", 0))[-1][1][3]
    with pytest.raises(UserError, match="follows a class, not a prompt") as err:
        text_page.explain(generated, 500, "saliency")
    assert "\n" not in str(err.value)

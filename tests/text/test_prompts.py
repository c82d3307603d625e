"""Prompt embeddings: computed once per (encoder, prompt), cached in memory and on disk, padded per batch."""

from __future__ import annotations

import pytest
import torch

from difflab.text.prompts import PromptEmbedder, pad_tokens


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFLAB_CACHE", str(tmp_path))
    return tmp_path


def test_encoded_once_then_from_memory(fresh_cache):
    embed = PromptEmbedder()
    first = embed(["a handwritten seven", "the number 7", "a handwritten seven"])
    assert embed.encoder_calls == 1 and torch.equal(first[0], first[2])
    again = embed(["the number 7", "a handwritten seven"])
    assert embed.encoder_calls == 1  # no second encoder call
    assert torch.equal(again[1, : first.shape[1]], first[0])


def test_disk_cache_survives_a_new_process_and_damage(fresh_cache):
    first = PromptEmbedder()(["a drawing of a four"])
    second = PromptEmbedder()
    assert torch.equal(second(["a drawing of a four"]), first) and second.encoder_calls == 0
    for f in (fresh_cache / "prompts").rglob("*.safetensors"):
        f.write_bytes(b"damaged")
    third = PromptEmbedder()
    assert torch.equal(third(["a drawing of a four"]), first) and third.encoder_calls == 1


def test_padding_and_the_empty_prompt(fresh_cache):
    embed = PromptEmbedder(disk_cache=False)
    out = embed(["seven", "a much longer prompt about a handwritten digit seven", ""])  # (3, L, 384)
    lengths = (out.abs().amax(-1) > 0).sum(1)
    assert lengths[0] < lengths[1] == out.shape[1] and lengths[2] == 0
    assert out[2].abs().max() == 0
    assert embed([""]).shape == (1, 1, 384)  # only empty prompts: one zero token, width from the encoder


def test_pad_tokens_needs_a_width():
    with pytest.raises(ValueError, match="width"):
        pad_tokens([torch.zeros(0, 0)])
    assert pad_tokens([torch.ones(2, 3), torch.zeros(0, 0)]).shape == (2, 2, 3)

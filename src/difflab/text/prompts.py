"""Prompt → conditioning tensor, computed once per (encoder, prompt) and cached in memory and on disk.

The U-Net's text conditioning is the token embeddings alone, `(B, L, D)`, with zero rows for padding
(the model rebuilds the mask from them). Prompts of a batch are padded to its longest; the empty
prompt is all zeros, the null branch of classifier-free guidance.

The disk cache (`<cache>/prompts/<encoder fingerprint>/<sha256 of the prompt>.safetensors`) means a
second `difflab sample --prompt ...` does not even load the encoder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from difflab.paths import cache_dir
from difflab.text.encoders import DEFAULT_ENCODER, load_text_encoder


class PromptEmbedder:
    """`embedder(prompts) -> (B, L, D)` for one encoder spec; the encoder loads only on a cache miss."""

    def __init__(self, spec: str = DEFAULT_ENCODER, *, disk_cache: bool = True) -> None:
        self.spec, self.disk_cache = spec, disk_cache
        self.memory: dict[str, torch.Tensor] = {}  # prompt -> (L_i, D) tokens, padding removed
        self.encoder_calls = 0  # how many batches went through the encoder (tests read it)

    @property
    def encoder(self):
        return load_text_encoder(self.spec)

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        prompts = [str(p) for p in prompts]
        missing = [p for p in dict.fromkeys(prompts) if p not in self.memory and not self._from_disk(p)]
        if missing:
            self._encode(missing)
        rows = [self.memory[p] for p in prompts]
        return pad_tokens(rows, dim=None if any(r.numel() for r in rows) else self.dim)

    def _encode(self, prompts: list[str]) -> None:
        self.encoder_calls += 1
        emb = self.encoder.encode(prompts)
        for i, prompt in enumerate(prompts):
            tokens = emb.tokens[i, emb.mask[i]].contiguous()  # (L_i, D); (0, D) for the empty prompt
            self.memory[prompt] = tokens
            if self.disk_cache and tokens.shape[0]:
                self._to_disk(prompt, tokens)

    def _path(self, prompt: str):
        digest = hashlib.sha256(prompt.encode()).hexdigest()
        return cache_dir() / "prompts" / self.encoder.fingerprint / f"{digest}.safetensors"

    def _from_disk(self, prompt: str) -> bool:
        if not prompt.strip():
            self.memory[prompt] = torch.zeros(0, 0)  # width fixed by pad_tokens
            return True
        if not self.disk_cache:
            return False
        path = self._path(prompt)
        try:
            self.memory[prompt] = load_file(path)["tokens"]
            return True
        except (OSError, SafetensorError, KeyError, ValueError):  # absent or damaged: encode again
            return False

    def _to_disk(self, prompt: str, tokens: torch.Tensor) -> None:
        path = self._path(prompt)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            save_file({"tokens": tokens}, str(tmp))
            tmp.replace(path)
        except OSError:
            pass  # a read-only or full cache only costs the next run an encoder call


def pad_tokens(rows: Sequence[torch.Tensor], *, dim: int | None = None) -> torch.Tensor:
    """Stack `(L_i, D)` token rows into `(B, max L, D)` with zero padding (at least one token slot)."""
    dim = dim or max((r.shape[1] for r in rows if r.numel()), default=None)
    if dim is None:
        raise ValueError("pad_tokens needs a non-empty prompt or `dim` to know the embedding width")
    length = max(1, max(r.shape[0] for r in rows))
    out = torch.zeros(len(rows), length, dim)
    for i, r in enumerate(rows):
        if r.numel():
            out[i, : r.shape[0]] = r
    return out


def empty_condition(like: torch.Tensor) -> torch.Tensor:
    """The null (empty-prompt) condition for a batch of text conditions: zeros of the same shape."""
    return torch.zeros_like(like)


__all__ = ["PromptEmbedder", "empty_condition", "pad_tokens"]

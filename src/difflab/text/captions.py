"""Captions for training on text: several templates per class for labelled datasets, or per-image text.

    captions_for(dataset) -> Captions(texts, choices)   # every caption once; per image, which it may use

- MNIST-like digits: "a handwritten digit seven", "the number 7", "a drawing of a seven", ...
- Fashion-MNIST and any other labelled set: "a photo of a sneaker", "a picture of a sneaker", ...
- image folders with a Hugging Face `metadata.jsonl` (`file_name`, `text`): each image's own text.

`paraphrases(...)` are wordings never used in training, to measure whether a model generalises through
the encoder rather than memorising its templates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from difflab.data import ImageDataset

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

DIGIT_TEMPLATES = ("a handwritten digit {word}", "the number {digit}", "a drawing of a {word}",
                   "a handwritten {digit}", "the digit {word}")
DIGIT_PARAPHRASES = ("an image of the numeral {word}", "{digit} written by hand", "someone wrote the digit {digit}",
                     "a scribbled {word}", "handwriting showing a {word}", "the numeral {digit} on paper",
                     "a sketch of the number {word}", "a pen drawing of {digit}", "{word}, handwritten",
                     "a {word} in ink")
OBJECT_TEMPLATES = ("a photo of a {name}", "a picture of a {name}", "an image of a {name}", "a {name}",
                    "a small photo of a {name}")
OBJECT_PARAPHRASES = ("a snapshot showing a {name}", "this is a {name}", "a low-resolution {name}",
                      "a grayscale photo of one {name}", "a product shot of a {name}", "here is a {name}",
                      "one {name}", "a centred {name}", "a tiny picture of a {name}", "a catalogue image of a {name}")


@dataclass(frozen=True)
class Captions:
    """`texts`: each distinct caption once. `choices` `(N, K)`: per image, caption ids it may be trained
    with (-1 pads rows with fewer than K), so a training step picks one at random per image."""

    texts: tuple[str, ...]
    choices: torch.Tensor

    def counts(self) -> torch.Tensor:
        return (self.choices >= 0).sum(1)  # (N,)


def is_digits(class_names) -> bool:
    return tuple(class_names) == tuple(str(d) for d in range(10))


def class_prompts(class_names, templates=None) -> list[list[str]]:
    """Per class, its prompts from `templates` (default: the training templates of this kind of data)."""
    digits = is_digits(class_names)
    templates = templates or (DIGIT_TEMPLATES if digits else OBJECT_TEMPLATES)
    out = []
    for i, name in enumerate(class_names):
        fill = dict(word=DIGIT_WORDS[i], digit=str(i)) if digits else dict(name=_readable(name))
        out.append([t.format(**fill) for t in templates])
    return out


def paraphrases(class_names) -> list[list[str]]:
    """Per class, wordings the training templates never use."""
    return class_prompts(class_names, DIGIT_PARAPHRASES if is_digits(class_names) else OBJECT_PARAPHRASES)


def captions_for(dataset: ImageDataset) -> Captions:
    """Per-image text when the dataset has it, else the class templates."""
    if dataset.captions is not None:
        texts = tuple(dict.fromkeys(dataset.captions))
        index = {t: i for i, t in enumerate(texts)}
        return Captions(texts, torch.tensor([[index[c]] for c in dataset.captions], dtype=torch.long))
    per_class = class_prompts(dataset.class_names)
    texts = tuple(t for prompts in per_class for t in prompts)
    k = len(per_class[0])
    table = torch.arange(len(texts)).reshape(len(per_class), k)  # (classes, K)
    return Captions(texts, table[dataset.labels])


def _readable(name: str) -> str:
    """"T-shirt/top" -> "t-shirt or top", "Ankle boot" -> "ankle boot"."""
    return name.replace("/", " or ").replace("_", " ").lower()


__all__ = ["DIGIT_PARAPHRASES", "DIGIT_TEMPLATES", "Captions", "captions_for", "class_prompts", "paraphrases"]

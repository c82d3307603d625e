"""Caption retrieval, CLIP-style: does a generated image pick out its own caption among the others?

    score = retrieval_score(images, captions, dataset="emoji")
    score["generated"]["recall_at_1"], score["real_floor"]["recall_at_1"], score["candidates"]

The judge only says whether an image is in the asked *class*; with per-image captions ("grinning face",
"flag: Japan") a model must draw the asked *thing*. So difflab trains a small image encoder contrastively
(symmetric InfoNCE with a learnable temperature, as CLIP) so that an image's embedding lands on the FROZEN
sentence embedding of its caption (MiniLM's masked mean of tokens, through one trained linear projection).
It is trained on the dataset's train split, cached per data fingerprint under `cache_dir("judges")` like
the judge (about a minute for the ~3,300 emoji on 2 cores), and a damaged cache is trained again.

Each image ranks its own caption among the DISTINCT captions of the evaluated set (recall@1, recall@5,
mean rank). The same numbers for held-out REAL images, in seeded groups of as many distinct captions, are
the floor to read them against: what real pictures of unseen captions score with the same encoder. When the
captions asked are the dataset's own, the real images of exactly those captions are scored too, among the
same candidates (`real_same_captions`): for held-out captions, the closest like-for-like comparison (the
random groups are mostly skin-tone variants of trained emoji, which are easier than a class-balanced set).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from difflab import progress
from difflab.data import ImageDataset, load_dataset
from difflab.errors import UserError
from difflab.evaluation.cached import load_or_train
from difflab.evaluation.judge import fit, shift_augment
from difflab.paths import cache_dir
from difflab.text.encoders import DEFAULT_ENCODER

RETRIEVAL_VERSION = 1  # bump when the network or the recipe changes, so stale caches are retrained
EMBED_DIM = 128  # the shared space images and captions meet in
TEXT_CHUNK = 256  # captions per encoder call while embedding a dataset's captions (a bar per chunk)
BATCH = 256  # images per forward when embedding (and per contrastive step: more negatives, sharper training)
EPOCHS = 20  # emoji held-out R@1 among 45: 71.7% at 20 epochs, 72.5% at 30 (8 s an epoch on one busy core)
MIN_STEPS = 100  # a small set still gets this many steps, in batches of a quarter of it (emoji:30: ~15 s)


class RetrievalNet(nn.Module):
    """Image tower (4 conv stages, GroupNorm + SiLU, global pool; ~0.3 M params at width 32) → `EMBED_DIM`;
    a linear projection of the frozen sentence embedding → `EMBED_DIM`; and CLIP's learnable log-temperature."""

    def __init__(self, *, in_channels: int = 3, text_dim: int = 384, width: int = 32, embed_dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.config = dict(in_channels=in_channels, text_dim=text_dim, width=width, embed_dim=embed_dim)

        def stage(c_in, c_out, stride):
            return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.GroupNorm(8, c_out), nn.SiLU())

        w = width
        self.image = nn.Sequential(
            stage(in_channels, w, 1), stage(w, 2 * w, 2),  # (B, 2w, H/2, W/2)
            stage(2 * w, 4 * w, 2), stage(4 * w, 4 * w, 2),  # (B, 4w, H/8, W/8)
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * w, embed_dim),  # (B, embed_dim)
        )
        self.text = nn.Linear(text_dim, embed_dim)  # the sentence encoder stays frozen; only this learns
        self.log_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), CLIP's start

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, C, H, W)` in [-1, 1] → unit vectors `(B, embed_dim)`."""
        return F.normalize(self.image(x), dim=1)

    def embed_text(self, pooled: torch.Tensor) -> torch.Tensor:
        """Frozen sentence embeddings `(B, text_dim)` → unit vectors `(B, embed_dim)`."""
        return F.normalize(self.text(pooled), dim=1)

    def scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=4.6052).exp()  # at most 100, as CLIP clips it


@dataclass
class CaptionRetrieval:
    """A trained `RetrievalNet` and the text encoder whose sentence embeddings it reads."""

    net: RetrievalNet
    text_encoder: str
    dataset: str
    meta: dict

    @torch.no_grad()
    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        return torch.cat([self.net.embed_images(b) for b in images.split(BATCH)])  # (N, E)

    @torch.no_grad()
    def caption_embeddings(self, captions: Sequence[str]) -> torch.Tensor:
        return self.net.embed_text(sentence_embeddings(captions, self.text_encoder))  # (K, E)

    def ranks(self, images: torch.Tensor, captions: Sequence[str], candidates: Sequence[str] | None = None
              ) -> torch.Tensor:
        """Each image's rank (1 = best) of its own caption among `candidates` (default: the distinct `captions`)."""
        candidates = list(dict.fromkeys(captions if candidates is None else candidates))
        index = {c: i for i, c in enumerate(candidates)}
        own = torch.tensor([index[c] for c in captions])  # (N,)
        sims = self.image_embeddings(images) @ self.caption_embeddings(candidates).T  # (N, K)
        return 1 + (sims > sims.gather(1, own[:, None])).sum(1)  # (N,)


def sentence_embeddings(captions: Sequence[str], encoder: str = DEFAULT_ENCODER, *, label: str | None = None
                        ) -> torch.Tensor:
    """`(N, D)`: the masked mean of each caption's token embeddings (sentence-transformers' pooling), through
    `PromptEmbedder`, so captions seen before come from its disk cache without loading the encoder."""
    from difflab.text.prompts import PromptEmbedder

    embedder, captions = PromptEmbedder(encoder), list(captions)
    out = []
    with progress.bar(len(captions), label or "", unit="caption", enabled=label is not None) as shown:
        for i in range(0, len(captions), TEXT_CHUNK):
            tokens = embedder(captions[i : i + TEXT_CHUNK])  # (b, L, D), zero rows are padding
            mask = tokens.abs().sum(-1, keepdim=True) > 0  # (b, L, 1)
            out.append((tokens * mask).sum(1) / mask.sum(1).clamp(min=1))  # (b, D)
            shown.update(len(tokens))
    return torch.cat(out)


def fingerprint(data: ImageDataset, encoder: str) -> str:
    """Changes with the pixels, the captions, the text encoder and `RETRIEVAL_VERSION`."""
    h = hashlib.sha1()
    h.update(f"retrieval {RETRIEVAL_VERSION}:{data.name}:{tuple(data.images.shape)}:{encoder}".encode())
    h.update(data.images.numpy().tobytes())
    h.update("\n".join(data.captions or ()).encode())
    return h.hexdigest()[:16]


def contrastive_loss(net: RetrievalNet, images: torch.Tensor, text: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE; images sharing a caption id are all positives of it (soft targets)."""
    logits = net.scale() * net.embed_images(images) @ net.embed_text(text).T  # (B, B)
    same = (ids[:, None] == ids[None, :]).float()  # (B, B)
    targets = same / same.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


def train_retrieval(train: ImageDataset, text: torch.Tensor, *, epochs: int = EPOCHS, batch_size: int = BATCH,
                    seed: int = 0, progress: str | None = None) -> RetrievalNet:
    """AdamW with one-cycle LR (`judge.fit`) and shifts that repeat the border; `text` `(K, D)` holds the frozen embedding of each distinct
    caption, in order of first use. `progress`: the label of its bar (None: silent)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    index = {c: i for i, c in enumerate(dict.fromkeys(train.captions))}
    ids = torch.tensor([index[c] for c in train.captions])  # (N,)
    net = RetrievalNet(in_channels=train.image_shape[0], text_dim=text.shape[1])
    batch_size = min(batch_size, max(32, len(train) // 4))
    epochs = max(epochs, -(-MIN_STEPS // max(1, len(train) // batch_size)))

    def loss(idx: torch.Tensor) -> torch.Tensor:
        images = shift_augment(train.images[idx], generator, repeat_border=True)
        return contrastive_loss(net, images, text[ids[idx]], ids[idx])

    fit(net, loss, len(train), batch_size=batch_size, epochs=epochs, generator=generator, lr=2e-3, weight_decay=0.05,
        warmup=0.1, progress=progress)
    return net.eval()


def captioned(dataset: str, split: str, *, data_dir=None, image_size=None) -> ImageDataset:
    """The split, refused in one line when its images carry no captions of their own."""
    data = load_dataset(dataset, split=split, data_dir=data_dir, image_size=image_size)
    if data.captions is None:
        raise UserError(f"{dataset} has no per-image captions, so there is nothing to retrieve; fix: use a captioned "
                        "dataset (emoji, or folder:PATH with a metadata.jsonl \"text\" column)")
    return data


def load_retrieval(dataset: str, *, data_dir=None, image_size=None, text_encoder: str = DEFAULT_ENCODER,
                   verbose: bool = True) -> CaptionRetrieval:
    """The cached caption-retrieval encoder of `dataset`, trained first if the cache has none (or a damaged one)."""
    train = captioned(dataset, "train", data_dir=data_dir, image_size=image_size)
    key = fingerprint(train, text_encoder)
    folder = cache_dir("judges")

    def trained() -> tuple[RetrievalNet, dict]:
        if verbose:
            progress.line(f"training the caption-retrieval encoder for {dataset} (once; cached in {folder})")
        started = time.monotonic()
        texts = list(dict.fromkeys(train.captions))
        text = sentence_embeddings(texts, text_encoder,
                                   label=f"retrieval: encoding {dataset} captions" if verbose else None)
        net = train_retrieval(train, text, progress=f"caption retrieval for {dataset}" if verbose else None)
        meta = {"model": net.config, "dataset": dataset, "text_encoder": text_encoder, "version": RETRIEVAL_VERSION,
                "train_size": len(train), "captions": len(texts), "seconds": round(time.monotonic() - started, 1)}
        if verbose:
            progress.line(f"caption-retrieval encoder for {dataset}: trained in {progress.clock_text(meta['seconds'])}")
        return net, meta

    net, meta = load_or_train(folder, f"retrieval-{key}", build=lambda meta: RetrievalNet(**meta["model"]),
                              train=trained, what="caption-retrieval encoder")
    return CaptionRetrieval(net, text_encoder, dataset, meta)


def recall(ranks: torch.Tensor, candidates: int) -> dict:
    """recall@1, recall@5 and mean rank of own-caption ranks, with what chance would score."""
    return {"n": len(ranks), "candidates": candidates, "recall_at_1": float((ranks <= 1).float().mean()),
            "recall_at_5": float((ranks <= 5).float().mean()), "mean_rank": float(ranks.float().mean())}


def chance(candidates: int) -> dict:
    """What a scorer that ranks captions at random gets among `candidates`."""
    return {"recall_at_1": 1 / candidates, "recall_at_5": min(5, candidates) / candidates,
            "mean_rank": (candidates + 1) / 2}


def real_floor(model: CaptionRetrieval, held_out: ImageDataset, candidates: int, *, seed: int = 0) -> dict:
    """The held-out real images' numbers among `candidates` distinct captions at a time: their distinct
    captions are shuffled (seeded) and cut into groups of that many; every image ranks its own caption
    within its group. Fewer held-out captions than `candidates` make one smaller group (the dict says so)."""
    texts = list(dict.fromkeys(held_out.captions))
    order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed)).tolist()
    size = min(candidates, len(texts))
    groups = [[texts[i] for i in order[g : g + size]] for g in range(0, len(texts) - size + 1, size)]
    ranks = []
    for group in groups:
        members = set(group)
        keep = [i for i, c in enumerate(held_out.captions) if c in members]
        ranks.append(model.ranks(held_out.images[keep], [held_out.captions[i] for i in keep], group))
    return {**recall(torch.cat(ranks), size), "groups": len(groups)}


def real_same_captions(model: CaptionRetrieval, splits: Sequence[ImageDataset], candidates: list[str]) -> dict | None:
    """The real images that carry exactly the asked captions (from any split), among the same candidates: the
    closest comparison for images generated from dataset captions. None when some caption has no real image."""
    wanted = set(candidates)
    keep = [(data, [i for i, c in enumerate(data.captions) if c in wanted]) for data in splits]
    captions = [data.captions[i] for data, idx in keep for i in idx]
    if set(captions) != wanted:
        return None
    images = torch.cat([data.images[idx] for data, idx in keep])  # (n, C, H, W)
    return recall(model.ranks(images, captions, candidates), len(candidates))


def retrieval_score(images: torch.Tensor, captions: Sequence[str], *, dataset: str, data_dir=None,
                    image_size: int | None = None, seed: int = 0, verbose: bool = True) -> dict:
    """Caption retrieval of `images` `(N, C, H, W)` in [-1, 1], each asked for `captions[i]`, among the distinct
    captions given; beside it the real-image floor at the same number of candidates, and chance."""
    captions = [str(c) for c in captions]
    if len(captions) != len(images):
        raise UserError(f"{len(images)} images but {len(captions)} captions; fix: one caption per image")
    if len(set(captions)) < 2:
        raise UserError(f"all {len(images)} images ask for the same caption {captions[:1]}, so there is nothing to "
                        "retrieve among; fix: evaluate images of two or more captions")
    held_out = captioned(dataset, "test", data_dir=data_dir, image_size=image_size)  # refuses uncaptioned data first
    if tuple(images.shape[1:]) != held_out.image_shape:
        raise UserError(f"images of shape {tuple(images.shape[1:])} but {dataset} holds {held_out.image_shape}; fix: "
                        "evaluate images made at the dataset's size and channels")
    model = load_retrieval(dataset, data_dir=data_dir, image_size=image_size, verbose=verbose)
    candidates = list(dict.fromkeys(captions))
    train = load_dataset(dataset, split="train", data_dir=data_dir, image_size=image_size)
    return {"candidates": len(candidates), "generated": recall(model.ranks(images, captions), len(candidates)),
            "real_floor": real_floor(model, held_out, len(candidates), seed=seed),
            "real_same_captions": real_same_captions(model, (train, held_out), candidates),
            "chance": chance(len(candidates)),
            "encoder": {"text_encoder": model.text_encoder, "version": RETRIEVAL_VERSION,
                        "train_size": model.meta.get("train_size")}}


__all__ = ["CaptionRetrieval", "RetrievalNet", "load_retrieval", "retrieval_score", "sentence_embeddings"]

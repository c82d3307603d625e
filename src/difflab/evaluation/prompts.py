"""Does a text model draw what a prompt names? Judge accuracy per prompt, trained wordings vs unseen ones.

    result = evaluate_prompts(run, per_prompt=100, guidance=3)
    result["sets"]["trained"]["accuracy"], result["sets"]["unseen"]["accuracy"]

Runs trained on class captions (templates such as "a handwritten digit seven"):
- "trained": the captions the run was trained with (`model.json` class_prompts);
- "unseen": paraphrases no training caption uses ("an image of the numeral seven", "7 written by hand", ...):
  if these score like the trained ones, the model follows the encoder's meaning, not memorised strings.

Runs trained on per-image captions (`emoji`: "grinning face", "flag: Japan"; folders with metadata.jsonl),
where paraphrasing a class name means nothing:
- "trained": a seeded sample of training captions, a few per class;
- "held-out": as many captions of held-out images, which the model never saw;
and a "retrieval" section: does each image pick out its own caption among the set's distinct captions
(`evaluation/retrieval.py`), beside what held-out real images score and chance.

- CLIP score (torchmetrics) of every image against its prompt, only when local CLIP weights are given;
  otherwise the result says why it was skipped. Nothing is downloaded.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from difflab.data import ImageDataset, load_dataset
from difflab.errors import UserError
from difflab.evaluation.retrieval import load_retrieval, retrieval_score
from difflab.sampling import Condition
from difflab.text.captions import paraphrases

DRAWN = "the caption of a random training image of each sample's class"  # what `drawn_prompts` asks
PER_CLASS = 5  # captions per class in each set of a per-image-caption run (emoji: 9 groups -> 45 prompts)
MIN_PROMPTS = 40  # ... and at least this many per set, so retrieval ranks among enough candidates (a 1-class folder)


def prompt_sets(run, *, seed: int = 0) -> dict[str, list[tuple[str, int]]]:
    """`{set name: [(prompt, class id), ...]}`: "trained"/"unseen" for a run trained on class captions,
    "trained"/"held-out" (seeded samples of each split's captions) for one trained on per-image captions."""
    if not getattr(run, "is_text", False) or not run.class_prompts:
        raise UserError(f"{run.path} is not a text-conditional run trained on class captions; fix: train with "
                        "--conditioning text on a labelled dataset, or evaluate without --prompts")
    if per_image_captions(run):
        return {name: sample_captions(_split(run, split), seed=seed)
                for name, split in (("trained", "train"), ("held-out", "test"))}
    trained = [(p, c) for c, prompts in enumerate(run.class_prompts) for p in prompts]
    known = {p for p, _ in trained}
    unseen = [(p, c) for c, prompts in enumerate(paraphrases(run.class_names)) for p in prompts if p not in known]
    return {"trained": trained, "unseen": unseen}


def per_image_captions(run) -> bool:
    """Whether the run's dataset gives each image its own caption (rather than class templates)."""
    return _split(run, "train").captions is not None


def sample_captions(data: ImageDataset, *, seed: int = 0) -> list[tuple[str, int]]:
    """Per class, `PER_CLASS` (or more, to reach `MIN_PROMPTS`) of its distinct captions, chosen with `seed`."""
    k = max(PER_CLASS, math.ceil(MIN_PROMPTS / data.num_classes))
    generator = torch.Generator().manual_seed(seed)
    first: dict[str, int] = {}  # caption -> class of its first image: a caption is asked once
    for caption, label in zip(data.captions, data.labels.tolist()):
        first.setdefault(caption, label)
    out = []
    for c in range(data.num_classes):
        mine = [t for t, label in first.items() if label == c]
        picks = torch.randperm(len(mine), generator=generator)[:k].sort().values.tolist()
        out += [(mine[i], c) for i in picks]
    return out


def drawn_prompts(run, labels: torch.Tensor, *, seed: int = 0, split: str = "train") -> list[str]:
    """A prompt per label that makes a text run's samples a draw from each class, as FD and recall need:
    per-image captions (emoji) - the caption of a random training image of the class; class captions - a random
    one of the class's templates. `Run.condition(labels)` asks each class's first caption instead, which is what
    `sample --label` means but only one mode of the class (a group of emoji drawn as "grinning face" alone).
    `split="test"`: captions of held-out images, which the model never saw (a name nearly picks out its training
    image, so training captions also measure how well the model reproduces its training set)."""
    labels = Condition.classes(labels, run.num_classes).values.cpu()  # out of range: the one-line error sampling gives
    generator = torch.Generator().manual_seed(seed)
    data = _split(run, split)
    if data.captions is None:  # class captions (templates)
        prompts = run.class_prompts
        picks = torch.randint(0, 1 << 30, (len(labels),), generator=generator).tolist()
        return [prompts[c][i % len(prompts[c])] for c, i in zip(labels.tolist(), picks)]
    out: list[str] = [""] * len(labels)
    for c in labels.unique().tolist():
        where, mine = (labels == c).nonzero().flatten(), (data.labels == c).nonzero().flatten()
        if not len(mine):
            raise UserError(f"class {c} has no {split} image to draw a caption from; fix: ask the classes it has")
        for i, j in zip(where.tolist(), mine[torch.randint(len(mine), (len(where),), generator=generator)].tolist()):
            out[i] = data.captions[j]
    return out


def _split(run, split: str) -> ImageDataset:
    cfg = run.config
    return load_dataset(cfg.dataset, split=split, data_dir=cfg.data_dir, image_size=cfg.image_size)


def evaluate_prompts(run, *, per_prompt: int = 100, seed: int = 0, clip_weights: str | Path | None = None,
                     **settings) -> dict:
    """Judge accuracy and confidence of `per_prompt` samples for every prompt of each set (and caption
    retrieval, when the run's captions are per image)."""
    from difflab.evaluation import judge_samples, load_judge
    from difflab.evaluation.suite import sample_shown

    if per_prompt < 1:
        raise UserError(f"--per-prompt must be at least 1, got {per_prompt}")
    sets = prompt_sets(run, seed=seed)  # refuses a run without text before any work
    cfg = run.config
    judge = load_judge(cfg.dataset, data_dir=cfg.data_dir, image_size=cfg.image_size)
    retrieval = per_image_captions(run)
    if retrieval:  # trained (once) before minutes of sampling, like the judge
        load_retrieval(cfg.dataset, data_dir=cfg.data_dir, image_size=cfg.image_size)
    s = run.sampler(seed=seed, **settings)
    result = {"per_prompt": per_prompt, "seed": seed, "solver": s.solver, "steps": s.steps, "guidance": s.guidance,
              "sets": {}}
    clip = _clip_scorer(clip_weights)
    for name, pairs in sets.items():
        started = time.monotonic()
        prompts = [p for p, _ in pairs for _ in range(per_prompt)]
        labels = torch.tensor([c for _, c in pairs]).repeat_interleave(per_prompt)  # (P * per_prompt,)
        images = sample_shown(run, None, n=None, prompts=prompts, seed=seed, label=f"prompts: sampling the {name} set",
                              **settings)  # (P * per_prompt, C, H, W), in chunks, with a bar
        with torch.no_grad():
            correct = (judge.probabilities(images).argmax(1) == labels).float().reshape(len(pairs), per_prompt)
        rows = [{"prompt": p, "label": c, "accuracy": float(a)} for (p, c), a in zip(pairs, correct.mean(1))]
        summary = judge_samples(judge, images, labels)
        result["sets"][name] = {"accuracy": summary["accuracy"], "mean_confidence": summary["mean_confidence"],
                                "prompts": len(pairs), "per_prompt_accuracy": rows}
        if retrieval:
            _add_retrieval(result, name, retrieval_score(images, prompts, dataset=cfg.dataset, data_dir=cfg.data_dir,
                                                         image_size=cfg.image_size, seed=seed, verbose=False))
        result["sets"][name]["seconds"] = round(time.monotonic() - started, 1)
        if clip is not None:
            result["sets"][name]["clip_score"] = clip(images, prompts)
    if clip is None:
        result["clip_skipped"] = ("CLIP score skipped: no local CLIP weights; give --clip-weights PATH (a folder "
                                  "saved with transformers' CLIPModel.save_pretrained) to compute it")
    return result


def _add_retrieval(result: dict, name: str, score: dict) -> None:
    """The whole score under result["retrieval"][name]; its headline numbers beside the set's judge accuracy
    (the report's table of the set shows them together)."""
    result.setdefault("retrieval", {})[name] = score
    generated, floor, same = score["generated"], score["real_floor"], score["real_same_captions"]
    row = {"retrieval_candidates": score["candidates"], "retrieval_recall_at_1": generated["recall_at_1"],
           "retrieval_recall_at_5": generated["recall_at_5"]}
    if same is not None:
        row.update(retrieval_same_captions_real_at_1=same["recall_at_1"], retrieval_same_captions_real_at_5=same["recall_at_5"])
    row.update(retrieval_held_out_real_at_1=floor["recall_at_1"], retrieval_held_out_real_at_5=floor["recall_at_5"])
    result["sets"][name].update(row)


def write_prompts_eval(run, result: dict, name: str | None = None) -> Path:
    """Save `evaluate_prompts`' result as the run's evaluation `name` (default: from its sampler settings)."""
    name = name or (f"prompts-{result['solver']}-{result['steps']}steps-g{result['guidance']:g}"
                    f"-n{result['per_prompt']}")
    return run.folder.write_eval(name, result)


def _clip_scorer(weights: str | Path | None):
    """`score(images, prompts) -> float` through torchmetrics' CLIPScore on local weights, or None."""
    if weights is None:
        return None
    folder = Path(weights).expanduser()
    if not (folder / "config.json").is_file():
        raise UserError(f"--clip-weights {folder}: no config.json there; fix: a folder saved with "
                        "transformers' CLIPModel.save_pretrained (model, tokenizer and image processor)")
    try:
        from torchmetrics.multimodal.clip_score import CLIPScore
    except ImportError:
        raise UserError("CLIP score needs torchmetrics and transformers; fix: pip install torchmetrics 'difflab[text]'") from None
    def local_clip():  # torchmetrics takes a loader callable for weights it does not know by name
        import transformers

        return (_FeatureTensors(transformers.CLIPModel.from_pretrained(folder, local_files_only=True).eval()),
                transformers.CLIPProcessor.from_pretrained(folder, local_files_only=True))

    try:
        metric = CLIPScore(model_name_or_path=local_clip)
    except (OSError, ValueError, TypeError) as err:
        raise UserError(f"cannot load CLIP from {folder} ({str(err).splitlines()[0]}); fix: point --clip-weights at "
                        "intact CLIP weights") from None

    def score(images: torch.Tensor, prompts: list[str]) -> float:
        pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (N, C, H, W)
        if pixels.shape[1] == 1:
            pixels = pixels.expand(-1, 3, -1, -1)  # CLIP reads RGB
        metric.reset()
        for part, texts in zip(pixels.split(256), _chunks(prompts, 256)):
            metric.update(part, texts)
        return float(metric.compute())

    return score


class _FeatureTensors(torch.nn.Module):
    """CLIPModel whose get_*_features return tensors: transformers 5 returns output objects, which
    torchmetrics' CLIPScore (1.9) cannot normalise."""

    def __init__(self, clip) -> None:
        super().__init__()
        self.clip, self.config = clip, clip.config

    def get_image_features(self, *args, **kwargs) -> torch.Tensor:
        return _tensor(self.clip.get_image_features(*args, **kwargs))

    def get_text_features(self, *args, **kwargs) -> torch.Tensor:
        return _tensor(self.clip.get_text_features(*args, **kwargs))


def _tensor(out) -> torch.Tensor:
    return out if torch.is_tensor(out) else out.pooler_output  # (N, projection_dim)


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


__all__ = ["drawn_prompts", "evaluate_prompts", "per_image_captions", "prompt_sets", "sample_captions", "write_prompts_eval"]

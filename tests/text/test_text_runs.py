"""Training on captions and sampling from prompts: the run folder, the CLI, label → caption, CFG dropout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from difflab.cli import main
from difflab.data import load_dataset
from difflab.errors import UserError
from difflab.run import Run
from difflab.text.captions import captions_for
from difflab.training.conditioning import TextConditioning


def test_run_folder_records_prompts_and_samples_from_them(text_run):
    meta = json.loads((text_run.path / "model.json").read_text())
    assert meta["text_encoder"] == "minilm" and meta["model"]["text_dim"] == 384
    assert meta["class_prompts"][7][0] == "a handwritten digit seven"
    run = Run.load(text_run.path)
    assert run.is_text and run.num_classes == 10
    images = run.sample(prompts=["a handwritten seven", "the number 3"], seed=1)
    assert images.shape == (2, 1, 28, 28) and images.abs().max() <= 1.0 + 1e-6
    assert all(json.loads(r)["loss"] > 0 for r in (text_run.path / "metrics.jsonl").read_text().splitlines())


def test_a_label_stands_for_its_first_caption(text_run):
    run = Run.load(text_run.path)
    by_label = run.sample(labels=[7, 2], seed=3)
    by_prompt = run.sample(prompts=[run.class_prompts[7][0], run.class_prompts[2][0]], seed=3)
    assert torch.equal(by_label, by_prompt)
    assert not torch.equal(by_label, run.sample(prompts=["a photo of a sneaker", "a cat"], seed=3))
    with pytest.raises(UserError, match="out of range"):
        run.sample(labels=[10])


def test_evaluation_asks_a_text_run_for_each_class_as_a_whole(text_run, monkeypatch):
    """The judge and the suite sample a text run with a random training caption per image (FD needs a draw from
    the class), while `sample --label` keeps meaning the class's first caption (the test above)."""
    from difflab.evaluation.suite import sample_shown

    run, asked = Run.load(text_run.path), []
    real = run.sample_chunks

    def spy(labels, *, prompts=None, **kwargs):
        asked.append((labels, prompts))
        return real(labels, prompts=prompts, **kwargs)

    monkeypatch.setattr(run, "sample_chunks", spy)
    labels = torch.arange(10).repeat(6)
    images = sample_shown(run, labels, n=None, seed=0, enabled=False, steps=2)
    (given, prompts), = asked
    assert images.shape[0] == 60 and given is None and len(prompts) == 60
    assert all(p in run.class_prompts[c] for p, c in zip(prompts, labels.tolist()))
    assert sum(p != run.class_prompts[c][0] for p, c in zip(prompts, labels.tolist())) > 20


def test_the_judge_of_a_text_run_says_which_prompts_it_asked(own_text_run, mnist_judge):
    from difflab.api import judge_run
    from difflab.evaluation.prompts import DRAWN

    result = judge_run(Run.load(own_text_run), n_per_class=2, name="drawn", progress=False, steps=2)
    saved = json.loads((own_text_run / "eval" / "drawn.json").read_text())
    assert result["n"] == 20 and saved["prompts"] == DRAWN


def test_caption_choice_and_dropout():
    data = load_dataset("mnist5k")
    caps = captions_for(data)
    bank = torch.arange(len(caps.texts), dtype=torch.float32)[:, None, None].expand(-1, 2, 3) + 1  # row k holds k + 1
    cond = TextConditioning(caps, bank)
    idx, g = torch.zeros(400, dtype=torch.long), torch.Generator().manual_seed(0)
    picked = cond.batch(idx, torch.zeros(400, dtype=torch.bool), g)[:, 0, 0].long() - 1  # caption ids
    assert set(picked.tolist()) == set(caps.choices[0].tolist())  # every template of image 0's class gets used
    dropped = cond.batch(idx[:4], torch.tensor([True, False, True, False]), g)
    assert dropped[0].abs().max() == 0 and dropped[2].abs().max() == 0 and dropped[1].abs().min() > 0


def test_cli_prompts(text_run, tmp_path, capsys):
    out = tmp_path / "sevens.png"
    assert main(["sample", str(text_run.path), "--prompt", "a handwritten seven", "--n", "4", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    assert main(["edit", "sdedit", str(text_run.path), "--from-dataset", "3", "--prompt", "the number seven",
                 "--levels", "3,5", "--out", str(tmp_path / "s.png"), "--save-npz", str(tmp_path / "s.npz")]) == 0
    assert main(["edit", "anagram", str(text_run.path), "--prompts", "a six,a nine", "--n", "2",
                 "--out", str(tmp_path / "a.png")]) == 0
    import numpy as np

    assert list(np.load(tmp_path / "s.npz")["prompts"]) == ["the number seven"]


def test_cli_prompt_errors(text_run, tiny_run, tmp_path, capsys):
    cases = [
        (["sample", str(tiny_run.path), "--prompt", "a seven"], "not text-conditional"),
        (["sample", str(text_run.path), "--prompt", "a seven", "--label", "7"], "not both"),
        (["edit", "anagram", str(text_run.path), "--prompts", "a six"], "two prompts"),
        (["edit", "sdedit", str(tiny_run.path), "--from-dataset", "1", "--prompt", "x"], "not a text-conditional run"),
        (["evaluate", str(tiny_run.path), "--prompts"], "not a text-conditional run"),
    ]
    for argv, message in cases:
        assert main(argv + ["--out", str(tmp_path / "x.png")] if argv[0] != "evaluate" else argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)


@pytest.fixture
def own_text_run(text_run, tmp_path):
    """A copy of the shared text run for tests that write into the run folder."""
    return Path(shutil.copytree(text_run.path, tmp_path / "run"))


def test_evaluate_prompts_trained_vs_unseen(own_text_run, capsys, mnist_judge):
    assert main(["evaluate", str(own_text_run), "--prompts", "--per-prompt", "2", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "trained" in out and "unseen" in out and "CLIP score skipped" in out
    result = json.loads(next((own_text_run / "eval").glob("prompts-*.json")).read_text())
    assert result["sets"]["trained"]["prompts"] == 50 and result["sets"]["unseen"]["prompts"] == 100
    assert 0 <= result["sets"]["unseen"]["accuracy"] <= 1


def test_clip_score_with_local_weights(text_run, tiny_clip, mnist_judge):
    from difflab.evaluation.prompts import evaluate_prompts

    result = evaluate_prompts(Run.load(text_run.path), per_prompt=1, steps=2, clip_weights=tiny_clip)
    assert all(isinstance(s["clip_score"], float) for s in result["sets"].values()) and "clip_skipped" not in result


@pytest.mark.parametrize("command", [["class-saliency", "--label", "7"], ["attribute", "--label", "3"], ["kernels"],
                                     ["pca", "--n", "20"]])
def test_explain_works_on_a_text_run(own_text_run, command, capsys):
    """`--label k` on a text run means the class's first caption, so every explain tool applies."""
    assert main(["explain", command[0], str(own_text_run), *command[1:]]) == 0
    assert (own_text_run / "explain" / command[0] / f"{command[0].replace('-', '_')}.json").is_file()


def test_prompted_samples_stream_to_a_captioned_folder(text_run, tmp_path):
    """`sample --prompt --out-dir` keeps each prompt as the `text` column: the folder loads back as captions."""
    out = tmp_path / "imgs"
    assert main(["sample", str(text_run.path), "--prompt", "a six", "--prompt", "a nine", "--n", "5", "--chunk-size", "2",
                 "--steps", "2", "--out-dir", str(out), "--out", str(tmp_path / "g.png"), "--no-progress"]) == 0
    from difflab.data.folder import load_image_folder

    data = load_image_folder(out)
    assert data.captions == ("a six", "a six", "a six", "a nine", "a nine")

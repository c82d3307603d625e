"""The sample filter: rejected images are drawn again, accepted ones untouched, the same for any chunk size;
its threshold is calibrated on held-out real images; a run saves it and loads it; bad settings are one line."""

import json
import shutil

import pytest
import torch
from torch import nn

from difflab.data import ImageDataset
from difflab.errors import UserError
from difflab.run import Run
from difflab.sampling import Condition, Sampler, class_labels
from difflab.sampling.filter import Redraws, SampleFilter, seeded_noise, train_filter


class MeanSign(nn.Module):
    """A 10-class 'classifier' that is sure of class 0 when an image's mean is above `offset`, of class 1 otherwise."""

    def __init__(self, offset=0.0):
        super().__init__()
        self.offset = offset

    def forward(self, x):
        m = x.float().flatten(1).mean(1, keepdim=True) - self.offset
        logits = torch.zeros(len(x), 10)
        return logits + torch.cat([m, -m, torch.zeros(len(x), 8)], 1) * 1e4


def _mean_filter(threshold=0.5, offset=0.0) -> SampleFilter:
    return SampleFilter(MeanSign(offset), threshold, 0.98, 1.0)


def test_condition_select_picks_rows():
    cond = Condition.classes([4, 5, 6, 7], 10)
    assert Condition.select(cond, torch.tensor([3, 1])).values.tolist() == [7, 5]
    assert len(Condition.unconditional(9).select(torch.tensor([0, 2]))) == 2


def test_scores_use_the_asked_class_or_the_likeliest_for_null_and_unconditional():
    f = _mean_filter()
    images = torch.stack([torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2), -0.5)])
    assert f.scores(images, torch.tensor([0, 0])).tolist() == pytest.approx([1.0, 0.0])
    assert f.scores(images, torch.tensor([10, 10])).tolist() == pytest.approx([1.0, 1.0])  # the null class id
    assert f.scores(images).tolist() == pytest.approx([1.0, 1.0])


def test_redraw_noise_is_per_image_and_reproducible():
    a = seeded_noise(3, 1, torch.tensor([5, 6]), (1, 4, 4))
    b = seeded_noise(3, 1, torch.tensor([6]), (1, 4, 4))
    assert torch.equal(a[1], b[0])
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(seeded_noise(3, 2, torch.tensor([5]), (1, 4, 4))[0], a[0])  # another draw, other noise


def _draw(run, labels, *, redraws, batch_size=500, filter=None, tally=None):
    sampler = run.sampler(steps=2, seed=1, redraws=redraws, guidance=1.0, autoguidance=1.0)
    return sampler.generate(run.model, run.alphas_cumprod, Condition.classes(labels, run.num_classes),
                            batch_size=batch_size, filter=filter, tally=tally)


def test_rejected_images_are_redrawn_and_accepted_ones_kept(tiny_run):
    labels = torch.zeros(24, dtype=torch.long)  # all "class 0": the filter wants a mean above the median
    plain = _draw(tiny_run, labels, redraws=0)
    median = float(plain.flatten(1).mean(1).median())
    assert torch.equal(plain, _draw(tiny_run, labels, redraws=0, filter=_mean_filter(offset=median)))  # redraws 0: off
    tally = Redraws()
    filtered = _draw(tiny_run, labels, redraws=5, filter=_mean_filter(offset=median), tally=tally)
    first_ok = plain.flatten(1).mean(1) > median
    assert 0 < int((~first_ok).sum()) < len(labels), "the tiny run should draw both signs"
    assert torch.equal(filtered[first_ok], plain[first_ok])  # what passed the first time is untouched
    assert tally.images == len(labels) and tally.redrawn == int((~first_ok).sum()) and tally.draws >= tally.redrawn
    now_ok = filtered.flatten(1).mean(1) > median
    assert int(now_ok.sum()) > int(first_ok.sum())
    assert tally.kept_unsure == int((~now_ok).sum())
    assert "redrawn" in tally.line()


def test_filtered_images_do_not_depend_on_the_chunk_size(tiny_run):
    labels = torch.zeros(13, dtype=torch.long)
    median = float(_draw(tiny_run, labels, redraws=0).flatten(1).mean(1).median())
    whole = _draw(tiny_run, labels, redraws=3, filter=_mean_filter(offset=median))
    assert torch.equal(_draw(tiny_run, labels, redraws=3, batch_size=4, filter=_mean_filter(offset=median)), whole)
    assert not torch.equal(whole, _draw(tiny_run, labels, redraws=0))  # some were redrawn


def test_a_filter_that_accepts_nothing_costs_at_most_redraws_more_draws(tiny_run):
    labels = torch.zeros(6, dtype=torch.long)
    tally = Redraws()
    _draw(tiny_run, labels, redraws=2, filter=_mean_filter(threshold=1.1), tally=tally)
    assert tally.draws == 2 * 6 and tally.kept_unsure == 6


@pytest.mark.parametrize("bad", [-1, 21, 1.5, True, "3"])
def test_bad_redraws_are_one_line(bad):
    with pytest.raises(UserError, match=r"--redraws must be an integer in 0\.\.20"):
        Sampler(redraws=bad)


def _toy_data(n, seed):
    """Two classes a filter can tell apart: bright or dark squares, with noise."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = (labels.view(-1, 1, 1, 1).float() * 1.0 - 0.5 + 0.3 * torch.randn(n, 1, 8, 8, generator=g)).clamp(-1, 1)
    return ImageDataset(images, labels, ("dark", "bright"), name="toy")


def test_threshold_passes_keep_of_the_held_out_images():
    test = _toy_data(200, 1)
    made = train_filter(_toy_data(256, 0), test, keep=0.9)
    passed = (made.scores(test.images, test.labels) >= made.threshold).float().mean()
    assert 0.88 <= float(passed) <= 0.92
    assert made.accuracy > 0.9 and 0 < made.threshold <= 1


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1])
def test_train_filter_refuses_keep_outside_0_1(bad):
    with pytest.raises(UserError, match="--filter-keep must be in"):
        train_filter(_toy_data(64, 0), _toy_data(20, 1), keep=bad)


def test_a_finished_run_has_its_filter_and_samples_through_it(tiny_run):
    assert tiny_run.folder.has_weights("filter")
    info = json.loads((tiny_run.path / "filter.json").read_text())
    assert info["keep"] == tiny_run.config.filter_keep and 0 <= info["threshold"] <= 1
    run = Run.load(tiny_run.path)
    assert run.filter is not None and run.sampler().redraws == 3
    tally = Redraws()
    run.sample(class_labels(10, 1), steps=2, tally=tally)
    assert tally.images == 10  # a 60-step model draws noise: the filter sees every image
    plain = run.sample(class_labels(10, 1), steps=2, redraws=0)
    assert plain.shape == (10, 1, 28, 28)


def test_a_damaged_filter_is_one_line_with_both_ways_out(tiny_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(tiny_run.path, copy)
    weights = (copy / "filter.safetensors").read_bytes()
    (copy / "filter.safetensors").write_bytes(weights[:100])  # torn
    with pytest.raises(UserError, match="filter.safetensors is not a valid safetensors") as torn:
        Run.load(copy).sample([1], steps=2)
    (copy / "filter.safetensors").unlink()  # filter.json without its weights
    with pytest.raises(UserError, match="filter.safetensors not found") as missing:
        Run.load(copy).sample([1], steps=2)
    (copy / "filter.safetensors").write_bytes(weights)
    (copy / "filter.json").write_text(json.dumps({"threshold": "high"}))
    with pytest.raises(UserError, match="filter.json: no threshold"):
        Run.load(copy).sample([1], steps=2)
    (copy / "filter.json").write_text(json.dumps({"threshold": 0.5, "model": {"colour": 3}}))
    with pytest.raises(UserError, match="not a JudgeNet's") as foreign:
        Run.load(copy).sample([1], steps=2)
    for error in (torn, missing, foreign):
        message = str(error.value)
        assert "\n" not in message and message.count("fix:") == 1 and "--redraws 0" in message
        assert f"difflab train --resume {copy}" in message
    assert Run.load(copy).sample([1], steps=2, redraws=0).shape == (1, 1, 28, 28)  # the way out works
    (copy / "filter.json").unlink()  # no filter.json: no filter, the run still samples
    assert Run.load(copy).filter is None
    assert Run.load(copy).sample([1], steps=2).shape == (1, 1, 28, 28)


def test_resuming_a_finished_run_trains_its_lost_filter_again(tiny_run, tmp_path):
    """The fix the damaged-filter message gives works: delete the two files, resume, the filter is back."""
    import difflab

    copy = tmp_path / "run"
    shutil.copytree(tiny_run.path, copy)
    (copy / "filter.json").unlink()
    (copy / "filter.safetensors").unlink()
    assert Run.load(copy).filter is None
    difflab.train(resume=copy, progress=False, evaluate=False)
    assert json.loads((copy / "filter.json").read_text()) == json.loads((tiny_run.path / "filter.json").read_text())
    assert (copy / "filter.safetensors").read_bytes() == (tiny_run.path / "filter.safetensors").read_bytes()  # cached


def test_difflab_sample_says_what_the_filter_redrew(tiny_run, tmp_path, capsys):
    from difflab.cli import main

    png = tmp_path / "g.png"
    assert main(["sample", str(tiny_run.path), "--n", "10", "--steps", "1", "--out", str(png), "--no-progress"]) == 0
    assert "filter: " in capsys.readouterr().err  # a 60-step model draws noise: the filter sends some back
    assert main(["sample", str(tiny_run.path), "--n", "10", "--steps", "1", "--redraws", "0", "--out", str(png),
                 "--no-progress"]) == 0
    assert "filter: " not in capsys.readouterr().err
    assert main(["sample", str(tiny_run.path), "--n", "10", "--redraws", "50", "--out", str(png)]) == 2
    assert "--redraws must be an integer in 0..20" in capsys.readouterr().err

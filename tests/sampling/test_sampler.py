"""`Sampler.chunks`: the lazy chunk iterator behind `Sampler.generate`, `Run.sample_chunks` and `difflab sample`."""

import weakref

import pytest
import torch

from difflab.errors import UserError
from difflab.sampling import Condition, Sampler, class_labels


def _args(run, labels):
    return run.model, run.alphas_cumprod, Condition.classes(labels, run.num_classes)


def test_chunks_concatenate_to_generate_bit_for_bit(tiny_run):
    labels = class_labels(10, 2)[:13]
    sampler = tiny_run.sampler(steps=3, seed=4)
    whole = sampler.generate(*_args(tiny_run, labels), batch_size=5, guide=tiny_run.guide)
    chunks = list(sampler.chunks(*_args(tiny_run, labels), batch_size=5, guide=tiny_run.guide))
    assert [len(images) for _, images in chunks] == [5, 5, 3]
    assert torch.equal(torch.cat([images for _, images in chunks]), whole)
    assert torch.equal(torch.cat([cond.values for cond, _ in chunks]), labels)


def test_run_sample_chunks_match_run_sample(tiny_run):
    labels = class_labels(10, 1)
    together = tiny_run.sample(labels, seed=3, steps=2)
    streamed = torch.cat([images for _, images in tiny_run.sample_chunks(labels, seed=3, steps=2)])
    assert torch.equal(streamed, together)


def test_iterator_is_lazy_and_holds_at_most_one_chunk(tiny_run):
    seen = []  # (chunk start, batch size) of every solver step
    chunks = tiny_run.sampler(steps=2).chunks(*_args(tiny_run, class_labels(10, 1)), batch_size=4, guide=tiny_run.guide,
                                              callback=lambda start, step: seen.append((start, step.x.shape[0])))
    assert seen == []  # nothing computed before the first chunk is asked for
    _, first = next(chunks)
    assert seen == [(0, 4), (0, 4)]  # one chunk's steps, never the next chunk's
    gone = weakref.ref(first)
    del first
    next(chunks)
    assert gone() is None  # the iterator kept no reference to the chunk it handed over
    list(chunks)
    assert max(b for _, b in seen) == 4 and sorted({s for s, _ in seen}) == [0, 4, 8]


def test_bad_arguments_fail_before_the_first_chunk(tiny_run):
    with pytest.raises(UserError, match="label 12 is out of range"):
        Sampler().chunks(*_args(tiny_run, torch.tensor([1, 12])))
    with pytest.raises(UserError, match="chunk size must be at least 1"):
        Sampler().chunks(*_args(tiny_run, torch.tensor([1])), batch_size=0)


@pytest.mark.parametrize("field, value, match", [
    ("guidance", float("nan"), "--guidance must be a number in"), ("guidance", -1.0, "--guidance must be"),
    ("guidance", float("inf"), "--guidance must be"), ("steps", 0, "--steps must be an integer"),
    ("eta", 2.0, "--eta must be in"), ("solver", "euler", "unknown solver 'euler'"), ("seed", -1, "--seed must be")])
def test_a_sampler_refuses_bad_settings_with_one_line(field, value, match):
    with pytest.raises(UserError, match=match):
        Sampler(**{field: value})


def test_same_seed_same_images_whatever_the_chunk_size(tiny_run):
    labels = class_labels(10, 1)
    guide = tiny_run.guide  # the run's default sampler adds autoguidance by its guide network
    a = tiny_run.sampler(steps=2, seed=9).generate(*_args(tiny_run, labels), batch_size=3, guide=guide)
    b = tiny_run.sampler(steps=2, seed=9).generate(*_args(tiny_run, labels), batch_size=10, guide=guide)
    c = tiny_run.sampler(steps=2, seed=8).generate(*_args(tiny_run, labels), batch_size=10, guide=guide)
    assert torch.equal(a, b) and not torch.equal(b, c)


def test_bf16_sampling_stays_close_to_fp32(tiny_run):
    """bf16 autocasts the network only (the solver stays fp32): same start noise, nearly the same images."""
    labels = class_labels(10, 2)
    fp32 = tiny_run.sample(labels, seed=5, steps=4, precision="fp32")
    bf16 = tiny_run.sample(labels, seed=5, steps=4, precision="bf16")
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape and torch.isfinite(bf16).all()
    assert 0 < (bf16 - fp32).abs().mean() < 0.05
    with pytest.raises(UserError, match="unknown precision 'fp16'"):
        tiny_run.sample(labels, steps=2, precision="fp16")


def test_an_editor_in_bf16_edits(tiny_run):
    from difflab.edit.api import Editor

    x = tiny_run.sample(class_labels(10, 1)[:2], seed=1, steps=2)
    estimate = Editor(tiny_run, steps=3, precision="bf16").estimate(3, 2)
    out = estimate(x, torch.full((2,), 500))
    # the network ran in bf16; ε̂ leaves it in full precision (float64 for a v-network: exact x̂₀)
    assert out.dtype in (torch.float32, torch.float64) and torch.isfinite(out).all()

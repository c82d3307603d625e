"""Deferred checks (the GPU's way of training): a step reads nothing back on the host, a non-finite step
is skipped on the device, and the counters are settled at each log line.

On CPU the trainer checks every step; `check_every_step=False` (or DIFFLAB_TEST_DEFERRED_CHECKS=1) runs the
GPU path here. Both draw the same random numbers on CPU, so they must train bitwise alike.
"""

from __future__ import annotations

import json
import sys
from collections import Counter

import pytest
import torch
from torch.overrides import TorchFunctionMode

from difflab.errors import UserError
from difflab.run import RunFolder
from difflab.run import files as ckpt
from difflab.training import rngstate
from difflab.training import trainer as trainer_module
from difflab.training.trainer import Trainer

HOST_READS = {"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "numpy", "cpu"}


class HostReads(TorchFunctionMode):
    """Counts tensor values read on the host (each one waits for a GPU) by difflab's own code."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        caller = sys._getframe(1).f_code.co_filename
        if name in HOST_READS and "difflab" in caller:
            self.reads[f"{name} at {caller.rsplit('/', 1)[-1]}:{sys._getframe(1).f_lineno}"] += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture
def config(tiny_config):
    return tiny_config.replace(steps=12, log_every=4, num_sample_grids=0)


def states(trainer: Trainer) -> list[torch.Tensor]:
    opt = [v for s in trainer.optimizer.state.values() for v in s.values()]
    return list(trainer.model.state_dict().values()) + list(trainer.ema.model.state_dict().values()) + opt


@pytest.mark.parametrize("conditioning", ["class", "text"])
def test_a_deferred_step_reads_nothing_on_the_host(tmp_path, config, conditioning):
    per_step = Trainer(config.replace(conditioning=conditioning), tmp_path / "a", show_progress=False)
    deferred = Trainer(config.replace(conditioning=conditioning), tmp_path / "b", show_progress=False,
                       check_every_step=False)
    for trainer in (per_step, deferred):
        trainer.train_step()  # the first step allocates Adam's state and the counters
    with HostReads() as checked_each_step:
        for _ in range(3):
            per_step.train_step()
    with HostReads() as checked_later:
        for _ in range(3):
            deferred.train_step()
    assert sum(checked_each_step.reads.values()) >= 3  # the counter sees the per-step check ...
    assert checked_later.reads == Counter()  # ... and the deferred step has none


def test_deferred_checks_train_bitwise_like_per_step_checks(tmp_path, config):
    a = Trainer(config, tmp_path / "a", show_progress=False).run()
    b_trainer = Trainer(config, tmp_path / "b", show_progress=False, check_every_step=False)
    b = b_trainer.run()
    rows = [[json.loads(r) for r in (d / "metrics.jsonl").read_text().splitlines()] for d in (a, b)]
    assert [(r["step"], r["loss"]) for r in rows[0]] == [(r["step"], r["loss"]) for r in rows[1]]
    assert [r["step"] for r in rows[0]] == [4, 8, 12]
    for name in ("model", "ema", "optimizer", "rng"):
        x, y = (ckpt.load_tensors(d / "state" / f"{name}.safetensors") for d in (a, b))
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), name


@pytest.mark.parametrize("where,value", [("loss", "nan"), ("grad", "inf")])
def test_a_bad_step_is_skipped_on_the_device(tmp_path, config, monkeypatch, where, value):
    monkeypatch.setenv("DIFFLAB_TEST_BAD_STEPS", f"3:{where}:{value}")
    trainer = Trainer(config, tmp_path / "run", show_progress=False, check_every_step=False)
    trainer.train_step(), trainer.train_step()
    before = [t.clone() for t in states(trainer)]
    assert torch.isnan(trainer.train_step())
    assert all(torch.equal(old, new) for old, new in zip(before, states(trainer)))  # Adam's step count too
    assert trainer.step == 3 and trainer.skipped_steps == 0  # counted as an attempt; known at the next read
    trainer.settle()
    assert trainer.skipped_steps == 1 and trainer.bad_steps == 1
    trainer.train_step()
    trainer.settle()
    assert trainer.skipped_steps == 1 and trainer.bad_steps == 0  # a good step ends the bad run
    trainer.run()
    tensors, info = RunFolder(tmp_path / "run").read_state()
    assert info["skipped_steps"] == 1 and info["step"] == 12
    assert all(torch.isfinite(v).all() for group in ("model", "ema", "optimizer") for v in tensors[group].values())


def test_a_long_bad_run_stops_at_the_next_log_line(tmp_path, config, monkeypatch):
    monkeypatch.setenv("DIFFLAB_TEST_BAD_STEPS", "3-1000:loss:nan")
    monkeypatch.setenv("DIFFLAB_TEST_DEFERRED_CHECKS", "1")  # the environment hook selects the same path
    monkeypatch.setattr(trainer_module, "MAX_BAD_STEPS", 5)
    trainer = Trainer(config.replace(steps=100), tmp_path / "run", show_progress=False)
    assert not trainer.check_every_step
    with pytest.raises(UserError, match=r"6 consecutive non-finite .* at step 8; no checkpoint was written yet"):
        trainer.run()  # bad from attempt 3; read at the log lines of steps 4 (2 bad) and 8 (6 bad)
    assert trainer.skipped_steps == 6


def test_bf16_autocast_trains_fp32_weights(tmp_path, config):
    trainer = Trainer(config.replace(precision="bf16", steps=3), tmp_path / "run", show_progress=False)
    losses = [float(trainer.train_step()) for _ in range(3)]
    assert all(0 < v < 10 for v in losses)
    assert all(v.dtype == torch.float32 for v in trainer.model.state_dict().values())
    fp32 = Trainer(config.replace(steps=3, precision="fp32"), tmp_path / "fp32", show_progress=False)
    assert abs(float(fp32.train_step()) - losses[0]) < 0.05 * losses[0]  # same batch, bf16 rounding only


def test_a_separate_device_generator_is_saved_and_restored(tmp_path):
    """GPU runs draw from a generator on the device; here a second CPU generator stands in for it."""
    loop, draws = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    tensors, info = rngstate.capture(loop, torch.arange(5), draws)
    expected = torch.rand(3, generator=draws)
    draws.manual_seed(99)
    rngstate.restore(loop, tensors, info, draws)
    assert torch.equal(torch.rand(3, generator=draws), expected)
    del tensors["draws"]  # a snapshot from a CPU run resumed on a GPU: reseeded the same way each time
    rngstate.restore(loop, tensors, info, draws)
    first = torch.rand(3, generator=draws)
    rngstate.restore(loop, tensors, info, draws)
    assert torch.equal(torch.rand(3, generator=draws), first)


def test_compiled_training_matches_eager_and_saves_plain_weights(tmp_path, config):
    """torch.compile (inductor, ~35 s to compile on CPU) trains the same model; saved keys have no `_orig_mod.`."""
    config = config.replace(steps=3, log_every=1, precision="fp32")  # bf16 rounding differs between the two
    eager = Trainer(config, tmp_path / "eager", show_progress=False).run()
    compiled = Trainer(config.replace(compile=True), tmp_path / "compiled", show_progress=False).run()
    la, lb = ([json.loads(r)["loss"] for r in (d / "metrics.jsonl").read_text().splitlines()] for d in (eager, compiled))
    assert len(la) == 3 and la == pytest.approx(lb, rel=1e-5)
    a, b = (ckpt.load_tensors(d / "model.safetensors") for d in (eager, compiled))
    assert a.keys() == b.keys()  # Adam turns float noise in near-zero gradients into steps of up to lr (6e-4)
    assert all(torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-4) for k in a)

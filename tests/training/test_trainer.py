import json

import pytest
import torch

import difflab
from difflab.errors import UserError
from difflab.run import files
from difflab.training.trainer import Trainer


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_tiny_run_writes_a_complete_folder(tmp_path, tiny_config):
    run = difflab.train(tiny_config, out=tmp_path / "run", progress=False, evaluate=False)
    for name in ("config.json", "model.json", "model.safetensors", "ema.safetensors", "metrics.jsonl",
                 "state/trainer.json", "samples/final.png", "samples/trajectory.png", "plots/loss.png"):
        assert (run.path / name).is_file(), name
    rows = metrics(run.path)
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    assert set(rows[0]) >= {"step", "loss", "lr", "images_per_s", "elapsed"}
    images = run.sample([5] * 3, steps=3)
    assert images.shape == (3, 1, 28, 28) and images.min() >= -1 and images.max() <= 1


def test_resume_equals_uninterrupted_run(tmp_path, tiny_config):
    Trainer(tiny_config, tmp_path / "straight", show_progress=False).run()

    half = Trainer(tiny_config, tmp_path / "resumed", show_progress=False)
    for _ in range(10):
        half.train_step()
        if half.step % tiny_config.log_every == 0:
            half._log(float("nan"), 0.0)  # these lines must be replaced by the resumed run's
    half.save()
    for _ in range(3):  # work after the snapshot is lost when the process dies
        half.train_step()
        half._log(float("nan"), 0.0)
    del half
    Trainer(tiny_config, tmp_path / "resumed", resume=True, show_progress=False).run()

    straight, resumed = metrics(tmp_path / "straight"), metrics(tmp_path / "resumed")
    assert [r["step"] for r in resumed] == [r["step"] for r in straight]
    assert [r["loss"] for r in straight[2:]] == [r["loss"] for r in resumed[2:]]
    for name in ("model", "ema"):
        a = files.load_tensors(tmp_path / "straight" / f"{name}.safetensors")
        b = files.load_tensors(tmp_path / "resumed" / f"{name}.safetensors")
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_same_seed_same_samples(tmp_path, tiny_config):
    run = difflab.train(tiny_config, out=tmp_path / "run", progress=False, evaluate=False)
    a = run.sample([1, 2], steps=3, seed=4)
    assert torch.equal(a, run.sample([1, 2], steps=3, seed=4))
    assert not torch.equal(a, run.sample([1, 2], steps=3, seed=5))


def test_resume_refuses_a_changed_model(tmp_path, tiny_config):
    difflab.train(tiny_config, out=tmp_path / "run", progress=False, evaluate=False)
    with pytest.raises(UserError, match=r"channels: \[8, 16\] -> \[8, 32\]"):
        difflab.train(resume=tmp_path / "run", channels=(8, 32), progress=False, evaluate=False)


def test_existing_run_folder_is_not_overwritten(tmp_path, tiny_config):
    difflab.train(tiny_config, out=tmp_path / "run", progress=False, evaluate=False)
    before = (tmp_path / "run" / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        difflab.train(tiny_config, out=tmp_path / "run", progress=False, evaluate=False)
    assert (tmp_path / "run" / "model.safetensors").read_bytes() == before


def test_nan_steps_are_skipped_and_never_reach_the_weights(tmp_path, tiny_config, monkeypatch):
    trainer = Trainer(tiny_config, tmp_path / "run", show_progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    monkeypatch.setattr(trainer, "loss", lambda x0, labels: trainer.model(x0, torch.zeros(len(x0), dtype=torch.long)).sum() * float("nan"))
    for _ in range(5):
        trainer.train_step()
    assert trainer.step == 0 and trainer.bad_steps == 5
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())

"""Trackers: TensorBoard writes RUN/tb/; wandb and mlflow are called right; none is imported unless asked."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
from PIL import Image

from difflab.cli import build_parser
from difflab.errors import UserError
from difflab.training import tracking
from difflab.training.config import TrainConfig, config_diff
from difflab.training.trainer import Trainer


def test_tensorboard_gets_scalars_grids_and_config(tiny_config, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed: pip install 'difflab[tensorboard]'")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = tiny_config.replace(steps=4, log_every=2, sample_steps=1, tensorboard=True)
    Trainer(config, tmp_path / "run", show_progress=False).run()
    events = EventAccumulator(str(tmp_path / "run" / "tb"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    assert [e.step for e in events.Scalars("train/loss")] == [2, 4]
    assert {"train/lr", "train/images_per_s", "train/epoch"} <= set(tags["scalars"])
    assert [e.step for e in events.Images("samples")] == [2]  # the one grid written at half the budget
    assert "config/text_summary" in tags["tensors"]


@pytest.mark.parametrize("flag", ["tensorboard", "wandb", "mlflow"])
def test_missing_package_names_the_extra(flag, monkeypatch, tmp_path):
    for module in ("tensorboard", "torch.utils.tensorboard", "wandb", "mlflow"):
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail like a missing package
    with pytest.raises(UserError, match=rf"--{flag} needs .*pip install 'difflab\[{flag}\]'"):
        tracking.open_tracker(TrainConfig(**{flag: True}), tmp_path)


def test_no_tracker_imports_nothing(monkeypatch, tmp_path):
    def refuse(name):
        raise AssertionError(f"imported {name} without being asked")

    monkeypatch.setattr(tracking.importlib, "import_module", refuse)
    tracker = tracking.open_tracker(TrainConfig(), tmp_path)
    tracker.log_scalars(1, {"loss": 1.0})
    tracker.close()
    assert not (tmp_path / "tb").exists()


def fake_module(name: str, calls: list) -> types.ModuleType:
    """A stand-in package that records every call made to it (and to the run object it returns)."""
    module = types.ModuleType(name)

    def record(label):
        return lambda *a, **k: calls.append((label, a, k)) or recorder

    recorder = types.SimpleNamespace(log=record("run.log"), finish=record("run.finish"))
    for fn in ("init", "Image", "start_run", "log_params", "log_metrics", "log_artifact", "end_run"):
        setattr(module, fn, record(fn))
    return module


def test_wandb_and_mlflow_receive_config_scalars_and_images(monkeypatch, tmp_path):
    calls: list = []
    monkeypatch.setitem(sys.modules, "wandb", fake_module("wandb", calls))
    monkeypatch.setitem(sys.modules, "mlflow", fake_module("mlflow", calls))
    grid = tmp_path / "grid.png"
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(grid)
    tracker = tracking.open_tracker(TrainConfig(wandb=True, mlflow=True, lr=1e-3), tmp_path)
    tracker.log_scalars(7, {"loss": 0.5})
    tracker.log_image("samples", 7, grid)
    tracker.close()
    by_name = {}
    for name, args, kwargs in calls:
        by_name.setdefault(name, []).append((args, kwargs))
    assert by_name["init"][0][1]["config"]["lr"] == 1e-3
    assert by_name["log_params"][0][0][0]["lr"] == "0.001"
    assert by_name["log_metrics"] == [(({"train/loss": 0.5},), {"step": 7})]
    assert ({"train/loss": 0.5},) in [a for a, _ in by_name["run.log"]]
    assert by_name["log_artifact"] == [((str(grid),), {"artifact_path": "samples"})]
    assert "run.finish" in by_name and "end_run" in by_name


def test_cli_flags_and_resume_allow_tracking_changes():
    args = build_parser().parse_args(["train", "--tensorboard", "--no-wandb"])
    assert args.tensorboard is True and args.wandb is False and args.mlflow is None
    saved = TrainConfig().to_dict()
    assert config_diff(saved, TrainConfig(tensorboard=True, wandb=True, mlflow=True).to_dict()) == []

"""Trackers: TensorBoard writes RUN/tb/; a missing package names its extra; none is imported unless asked.

The real wandb and mlflow are read back in tests/training/test_trackers_real.py."""

from __future__ import annotations

import sys

import pytest

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


class Recording(tracking.Tracker):
    """A tracker that notes its closing (and can fail at it)."""

    def __init__(self, closed: list, name: str, fail: bool = False):
        self.closed, self.name, self.fail = closed, name, fail

    def close(self) -> None:
        self.closed.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} failed to close")


def test_a_tracker_that_fails_to_start_closes_those_already_started(monkeypatch, tmp_path):
    closed: list = []
    monkeypatch.setattr(tracking, "TensorBoardTracker", lambda run_dir: Recording(closed, "tensorboard"))
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(UserError, match="--wandb needs"):
        tracking.open_tracker(TrainConfig(tensorboard=True, wandb=True), tmp_path)
    assert closed == ["tensorboard"]


def test_every_tracker_is_closed_even_if_one_fails_to_close():
    closed: list = []
    tracker = tracking.MultiTracker([Recording(closed, "a", fail=True), Recording(closed, "b")])
    with pytest.raises(RuntimeError, match="a failed"):
        tracker.close()
    assert closed == ["a", "b"]


def test_cli_flags_and_resume_allow_tracking_changes():
    args = build_parser().parse_args(["train", "--tensorboard", "--no-wandb"])
    assert args.tensorboard is True and args.wandb is False and args.mlflow is None
    saved = TrainConfig().to_dict()
    assert config_diff(saved, TrainConfig(tensorboard=True, wandb=True, mlflow=True).to_dict()) == []

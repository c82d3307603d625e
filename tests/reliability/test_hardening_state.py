"""Issue 19, classes 1, 2 and the early kill: damaged state is refused before use, non-finite weights are
never written, and a run stopped before its first checkpoint resumes from step 0.

Every refusal is one line (exit 2) and leaves every file of the run as it was (compared byte for byte).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from difflab.cli import main
from difflab.errors import UserError
from difflab.run import Run, RunFolder
from difflab.training.config import TrainConfig
from difflab.training.trainer import Trainer

TINY = TrainConfig(channels=(8, 16), batch_size=8, steps=2, minutes=None, log_every=1, warmup_steps=1,
                   num_sample_grids=0, sample_steps=2, checkpoint_minutes=100.0)
RESUME = ["--steps", "3", "--no-eval", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A 2-step run with a snapshot (copy it before changing it)."""
    return Trainer(TINY, tmp_path_factory.mktemp("hardening") / "run", show_progress=False).run()


def digest(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("difflab: error:") and err.count("\n") == 1, err
    return err


def rewrite(path: Path, change) -> None:
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))


def _shapes_swapped(t: dict) -> None:
    a, b = sorted(k for k in t if k.endswith(".exp_avg"))[:2]
    t[a], t[b] = t[b].clone(), t[a].clone()  # other parameters' moments: wrong shapes for fused AdamW


def _first(suffix: str, value: float):
    def change(t: dict) -> None:
        name = sorted(k for k in t if k.endswith(suffix))[0]
        t[name] = torch.full_like(t[name], value)
    return change


DAMAGE = {  # file in state/ -> how it is damaged, and what the one line says
    "optimizer shapes": ("optimizer", _shapes_swapped, "does not fit this model's optimizer"),
    "optimizer negative second moment": ("optimizer", _first(".exp_avg_sq", -1.0), "is negative"),
    "optimizer NaN": ("optimizer", _first(".exp_avg", float("nan")), "NaN or infinite"),
    "model NaN": ("model", _first("weight", float("nan")), "NaN or infinite"),
    "ema inf": ("ema", _first("weight", float("inf")), "NaN or infinite"),
    "model integer dtype": ("model", lambda t: t.update({k: v.to(torch.int32) for k, v in t.items()}), "int32"),
    "ema missing tensor": ("ema", lambda t: t.pop(sorted(t)[0]), "missing"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_snapshot_is_refused_before_use_and_nothing_is_written(trained, tmp_path, capsys, case):
    name, change, message = DAMAGE[case]
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    rewrite(run / "state" / f"{name}.safetensors", change)
    before = digest(run)
    assert main(["train", "--resume", str(run), *RESUME]) == 2
    assert message in one_line(capsys)
    assert digest(run) == before


FOREIGN_INFO = {"step": "three", "seen": -8, "elapsed": float("nan"), "position": 10**9, "optimizer": [],
                "ema_updates": True, "rng": "python state past C's range"}


@pytest.mark.parametrize("key", sorted(FOREIGN_INFO))
def test_foreign_trainer_json_is_one_line_and_nothing_is_written(trained, tmp_path, capsys, key):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    info = json.loads((run / "state" / "trainer.json").read_text())
    value = FOREIGN_INFO[key] if key != "rng" else {**info["rng"], "python": [3, [2**80] * 625, None]}
    (run / "state" / "trainer.json").write_text(json.dumps({**info, key: value}))
    before = digest(run)
    assert main(["train", "--resume", str(run), *RESUME]) == 2
    assert "trainer.json" in one_line(capsys)
    assert digest(run) == before


@pytest.mark.parametrize("damage", ["nan", "inf", "int", "half-shape"])
@pytest.mark.parametrize("weights", ["ema", "guide"])
def test_weights_that_do_not_fit_or_are_not_finite_are_refused_when_loaded(trained, tmp_path, damage, weights):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    tensors = load_file(str(run / "ema.safetensors"))
    name = sorted(k for k in tensors if k.endswith("weight"))[0]
    value = tensors[name]
    tensors[name] = {"nan": lambda: torch.full_like(value, float("nan")), "inf": lambda: torch.full_like(value, float("inf")),
                     "int": lambda: value.to(torch.int64), "half-shape": lambda: value.flatten()[: value.numel() // 2]
                     }[damage]()
    save_file(tensors, str(run / f"{weights}.safetensors"))
    with pytest.raises(UserError, match=f"{weights}.safetensors"):
        _ = Run.load(run).guide  # the guide is loaded on first use


def test_non_finite_weights_never_overwrite_the_saved_ones(tmp_path):
    trainer = Trainer(TINY, tmp_path / "run", show_progress=False)
    trainer.run()
    before = digest(tmp_path / "run")
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))  # weights gone bad: --lr inf, a broken kernel, ...
    with pytest.raises(UserError, match="NaN or infinite values.*nothing was saved"):
        trainer.save()
    with pytest.raises(UserError, match="NaN or infinite"):  # any writer through RunFolder (distill, export, guide)
        trainer.folder.save_weights("ema", trainer.model.state_dict())
    assert digest(tmp_path / "run") == before


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_step_0(tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(TINY, run, show_progress=False)  # set up, then stopped before its first snapshot
    assert not (run / "state").exists() and RunFolder(run).is_run()
    assert main(["train", "--resume", str(run), *RESUME]) == 0
    assert "starting it again from step 0 with its saved config" in capsys.readouterr().err
    _, info = RunFolder(run).read_state()
    assert info["step"] == 3 and [r["step"] for r in RunFolder(run).read_metrics()] == [1, 2, 3]

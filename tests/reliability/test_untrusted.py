"""Guarantee 1: an untrusted file never runs code, whatever name it is given.

A pickle whose `__reduce__` creates a marker file (and the same payload inside a `torch.save` zip)
is put in place of every file difflab opens; the command must fail with one line and the marker
must not exist. The payloads are first shown to work (plain `pickle.loads` / `torch.load` run them),
so the test can fail.
"""

from __future__ import annotations

import builtins
import io
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from difflab.cli import main
from difflab.errors import UserError
from difflab.run import Run
from difflab.training.trainer import Trainer


class Payload:
    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.open, (self.marker, "w")  # unpickling creates the marker file


def payloads(marker: Path) -> dict[str, bytes]:
    zipped = io.BytesIO()
    torch.save({"weight": Payload(marker)}, zipped)
    return {"pickle": pickle.dumps({"data": Payload(marker)}, protocol=2), "torch.save": zipped.getvalue()}


def test_the_payloads_do_run_when_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    for name, data in payloads(marker).items():
        pickle.loads(data) if name == "pickle" else torch.load(io.BytesIO(data), weights_only=False)
        assert marker.exists(), name
        marker.unlink()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from difflab.training.config import TrainConfig

    config = TrainConfig(channels=(8, 16), batch_size=8, steps=1, minutes=None, num_sample_grids=0, sample_steps=2,
                         checkpoint_minutes=100.0)
    return Trainer(config, tmp_path_factory.mktemp("untrusted") / "run", show_progress=False).run()


SAMPLE = ["sample", "{run}", "--n", "1", "--steps", "1", "--out", "{tmp}/x.png"]
RESUME = ["train", "--resume", "{run}", "--steps", "2", "--no-eval", "--no-progress"]
RUN_FILES = {  # file in a run folder -> the command that opens it
    "config.json": SAMPLE, "model.json": SAMPLE, "ema.safetensors": SAMPLE,
    "state/trainer.json": RESUME, "state/model.safetensors": RESUME, "state/ema.safetensors": RESUME,
    "state/optimizer.safetensors": RESUME, "state/rng.safetensors": RESUME,
}


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
@pytest.mark.parametrize("name", sorted(RUN_FILES))
def test_payload_in_a_run_folder_never_runs(run_dir, tmp_path, capsys, name, kind):
    run, marker = tmp_path / "run", tmp_path / "pwned"
    shutil.copytree(run_dir, run)
    (run / name).write_bytes(payloads(marker)[kind])
    argv = [a.format(run=run, tmp=tmp_path) for a in RUN_FILES[name]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error:") and err.count("\n") == 1, err
    assert not marker.exists() and not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("kind", ["pickle", "torch.save"])
def test_payload_as_model_weights_never_runs(run_dir, tmp_path, kind):
    run, marker = tmp_path / "run", tmp_path / "pwned"
    shutil.copytree(run_dir, run)
    (run / "model.safetensors").write_bytes(payloads(marker)[kind])
    with pytest.raises(UserError, match="not a valid safetensors file"):
        Run.load(run, weights="model")
    assert not marker.exists()


def _as_data(kind: str, data: bytes, tmp: Path) -> list[str]:
    if kind == "cifar":
        folder = tmp / "data" / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for name in ("batches.meta", *(f"data_batch_{i}" for i in range(1, 6))):
            (folder / name).write_bytes(data)
        return ["--dataset", "cifar10", "--data-dir", str(tmp / "data")]
    if kind == "idx":
        (tmp / "data").mkdir()
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
            (tmp / "data" / name).write_bytes(data)
        return ["--dataset", "mnist", "--data-dir", str(tmp / "data")]
    (tmp / "imgs" / "a").mkdir(parents=True)
    (tmp / "imgs" / "a" / "x.png").write_bytes(data)
    return ["--dataset", f"folder:{tmp / 'imgs'}"]


@pytest.mark.parametrize("kind", ["cifar", "idx", "folder"])
def test_payload_as_a_dataset_never_runs(tmp_path, capsys, kind):
    marker = tmp_path / "pwned"
    args = _as_data(kind, payloads(marker)["pickle"], tmp_path)
    assert main(["train", *args, "--steps", "1", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error:") and err.count("\n") == 1, err
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_no_default_path_calls_torch_load():
    source = Path(__file__).parents[2] / "src" / "difflab"
    offenders = [p for p in source.rglob("*.py") if "torch.load(" in p.read_text() or "pickle.load(" in p.read_text()]
    assert offenders == [], offenders

"""The single-step denoiser (`--objective denoise`) and the `difflab edit` command line."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.cli import main
from difflab.errors import UserError
from difflab.training.config import TrainConfig


@pytest.fixture(scope="module")
def denoise_run(tmp_path_factory):
    import difflab

    config = TrainConfig(channels=(8, 16), batch_size=16, steps=10, minutes=None, warmup_steps=2, objective="denoise",
                         sigma=0.5, num_sample_grids=2, checkpoint_minutes=100.0, log_every=5)
    return difflab.train(config, out=tmp_path_factory.mktemp("den") / "run", progress=False, evaluate=True)


def test_denoise_config_is_checked():
    assert TrainConfig(objective="denoise", sigma=0.3).sigma == 0.3
    with pytest.raises(UserError, match="--sigma must be in"):
        TrainConfig(objective="denoise", sigma=0.0)
    with pytest.raises(UserError, match="unknown objective 'noise'"):
        TrainConfig(objective="noise")


def test_denoise_loss_is_l2_to_the_clean_image_without_t(tiny_config, tmp_path):
    from difflab.training.trainer import Trainer

    trainer = Trainer(tiny_config.replace(objective="denoise", sigma=0.7), tmp_path / "r", show_progress=False)
    assert trainer.model.spec.time_conditioning is False
    x0, labels = trainer.next_batch()
    state = trainer.generator.get_state()
    loss = trainer.loss(x0, labels)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0).set_state(state))
    with torch.no_grad():
        pred = trainer.model(x0 + 0.7 * noise, torch.zeros(len(x0), dtype=torch.long), torch.full_like(labels, 10))
    assert abs(loss.item() - (pred - x0).pow(2).mean().item()) < 1e-6


def test_a_denoise_run_trains_but_cannot_be_sampled(denoise_run, capsys):
    assert not (denoise_run.path / "eval").exists() and not (denoise_run.path / "samples" / "final.png").exists()
    with pytest.raises(UserError, match="single-step denoiser"):
        denoise_run.sample([1])
    assert main(["sample", str(denoise_run.path), "--n", "1"]) == 2
    assert "single-step denoiser" in capsys.readouterr().err


def test_denoise_ood_cli_writes_the_strip(denoise_run, tmp_path):
    out, npz = tmp_path / "ood.png", tmp_path / "ood.npz"
    assert main(["edit", "denoise-ood", str(denoise_run.path), "--from-dataset", "0", "--sigmas", "0,0.5,1",
                 "--out", str(out), "--save-npz", str(npz)]) == 0
    data = np.load(npz)
    assert out.stat().st_size > 0 and data["images"].shape == (3, 2, 1, 28, 28, 1) and list(data["sigmas"]) == [0, 0.5, 1]


EDITS = {
    "noise": (["--from-dataset", "1", "--t", "100,900"], {"images": (1, 2, 28, 28, 1), "inputs": (1, 28, 28, 1)}),
    "denoise": (["--from-dataset", "1", "--t", "500"], {"images": (1, 4, 1, 28, 28, 1)}),
    "sdedit": (["--from-dataset", "1", "--levels", "1,3", "--label", "7", "--n", "2"], {"images": (2, 2, 28, 28, 1), "labels": (2,)}),
    "inpaint": (["--from-dataset", "1", "--box", "4,4,14,14", "--n", "2"], {"images": (2, 28, 28, 1), "masks": (28, 28)}),
    "anagram": (["--labels", "6,9", "--view", "flipv", "--n", "3"], {"images": (3, 28, 28, 1), "views": (3, 28, 28, 1)}),
    "hybrid": (["--far", "1", "--near", "7", "--sigma", "1.5", "--n", "2"], {"images": (2, 28, 28, 1), "shrunk": (2, 28, 28, 1)}),
}


@pytest.mark.parametrize("command", list(EDITS))
def test_each_edit_command_writes_a_strip_and_the_raw_tensors(tiny_run, tmp_path, command):
    extra, shapes = EDITS[command]
    out, npz = tmp_path / "e.png", tmp_path / "e.npz"
    argv = ["edit", command, str(tiny_run.path), *extra, "--steps", "4", "--seed", "2", "--out", str(out), "--save-npz", str(npz)]
    assert main(argv) == 0
    data = np.load(npz)
    assert out.stat().st_size > 0
    assert {k: data[k].shape for k in shapes} == shapes


@pytest.mark.parametrize("extra, message", [
    (["anagram", "--labels", "6,9", "--view", "rot90"], "unknown view 'rot90'"),
    (["anagram", "--labels", "6", "--view", "rot180"], "needs two class ids"),
    (["sdedit", "--from-dataset", "0", "--levels", "1,5"], "noise level 5 is out of range; use 1..4"),
    (["sdedit", "--from-dataset", "0", "--levels", "0.5,1.2"], "noise level 1.2 is out of range"),
    (["sdedit", "--from-dataset", "99999"], "--from-dataset 99999 is out of range"),
    (["inpaint", "--from-dataset", "0", "--box", "3,3,3,8"], "--box 3,3,3,8 is empty"),
    (["hybrid", "--far", "1", "--near", "7", "--sigma", "-1"], "--sigma must be >= 0"),
])
def test_edit_mistakes_are_one_line_errors(tiny_run, tmp_path, capsys, extra, message):
    argv = ["edit", extra[0], str(tiny_run.path), *extra[1:], "--steps", "4", "--out", str(tmp_path / "x.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error: ") and message in err and err.count("\n") == 1, err

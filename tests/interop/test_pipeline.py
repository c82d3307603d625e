"""`--pipeline DIR`: a local diffusers UNet2DModel + scheduler as a difflab `Run`."""

import json

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel

from difflab.cli import main
from difflab.errors import UserError
from difflab.interop.pipeline import PipelineRun, load_run_or_pipeline
from difflab.run import Run

T, SIZE = 100, 8


def tiny_unet(out_channels: int = 1, num_class_embeds: int | None = 3) -> UNet2DModel:
    torch.manual_seed(0)  # random weights; conv_out is not zero-initialised in diffusers
    return UNet2DModel(sample_size=SIZE, in_channels=1, out_channels=out_channels, layers_per_block=1,
                       block_out_channels=(8, 16), down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"), norm_num_groups=4, num_class_embeds=num_class_embeds)


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    tiny_unet().save_pretrained(out / "unet")
    DDPMScheduler(num_train_timesteps=T, beta_schedule="linear", prediction_type="epsilon").save_pretrained(out / "scheduler")
    return out


def test_pipeline_duck_types_a_run(pipeline_dir):
    run = load_run_or_pipeline(None, pipeline_dir)
    assert isinstance(run, Run) and isinstance(run, PipelineRun)
    assert run.num_classes == 3 and run.class_names == ("0", "1", "2")
    assert run.config.objective == "eps" and run.config.guidance == 1.0
    assert (run.alphas_cumprod - DDPMScheduler(num_train_timesteps=T).alphas_cumprod.double()).abs().max() == 0


def test_pipeline_samples_what_diffusers_ddim_does(pipeline_dir):
    """The wiring (ε objective, the scheduler's ᾱ, class labels) against diffusers' own loop."""
    run = PipelineRun.load(pipeline_dir)
    labels = torch.tensor([0, 2])
    ours = run.sample(labels, seed=3, solver="ddim", steps=5, precision="fp32")
    scheduler = DDIMScheduler(num_train_timesteps=T, beta_schedule="linear", clip_sample=True,
                              set_alpha_to_one=True, timestep_spacing="trailing")
    scheduler.set_timesteps(5)
    x = torch.randn((2, 1, SIZE, SIZE), generator=torch.Generator().manual_seed(3))
    for t in scheduler.timesteps:
        eps = run.model.unet(x, t, class_labels=labels).sample
        x = scheduler.step(eps, t, x, use_clipped_model_output=True).prev_sample
    assert (ours - x).abs().max().item() < 1e-4  # a dropped label would make UNet2DModel raise


def test_sample_cli_with_pipeline(pipeline_dir, tmp_path, capsys):
    assert main(["sample", "--pipeline", str(pipeline_dir), "--label", "1,2", "--n", "4", "--steps", "3",
                 "--out", str(tmp_path / "g.png"), "--out-dir", str(tmp_path / "imgs")]) == 0
    rows = [json.loads(line) for line in (tmp_path / "imgs" / "metadata.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == [1, 1, 2, 2] and rows[0]["guidance"] == 1.0


def test_edit_cli_with_pipeline(pipeline_dir, tmp_path):
    npz = tmp_path / "a.npz"
    assert main(["edit", "anagram", "--pipeline", str(pipeline_dir), "--labels", "1,2", "--view", "rot180",
                 "--n", "2", "--out", str(tmp_path / "a.png"), "--save-npz", str(npz)]) == 0
    assert np.load(npz)["images"].shape[0] == 2


def test_pipeline_refuses_guidance_without_a_null_class(pipeline_dir):
    with pytest.raises(UserError, match="no null class"):
        PipelineRun.load(pipeline_dir).sample([0], seed=0, steps=2, guidance=3.0)


def test_learned_variance_channels_are_dropped(tmp_path):
    unet = tiny_unet(out_channels=2, num_class_embeds=None)
    unet.save_pretrained(tmp_path)
    DDPMScheduler(num_train_timesteps=T).save_pretrained(tmp_path)  # single-folder layout
    run = PipelineRun.load(tmp_path)
    x, t = torch.randn(2, 1, SIZE, SIZE), torch.tensor([5, 50])
    assert run.num_classes == 0
    assert torch.equal(run.model(x, t), unet(x, t).sample[:, :1])


@pytest.mark.parametrize("args, message", [
    (("run", "dir"), "not both"), ((None, None), "not both"),
])
def test_run_or_pipeline_needs_exactly_one(args, message):
    with pytest.raises(UserError, match=message):
        load_run_or_pipeline(*args)


def test_unsupported_model_class_is_named(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    (tmp_path / "scheduler_config.json").write_text(json.dumps({"_class_name": "DDPMScheduler"}))
    with pytest.raises(UserError, match="UNet2DConditionModel"):
        PipelineRun.load(tmp_path)
    assert main(["sample", "--pipeline", str(tmp_path / "missing")]) == 2

"""`difflab export --diffusers`: diffusers loads the folder and samples what difflab samples."""

import json

import pytest
import torch

pytest.importorskip("diffusers")
from diffusers import DDIMScheduler, DiffusionPipeline, DPMSolverMultistepScheduler

from difflab.cli import main
from difflab.interop.diffusers_model import DifflabUNet2DModel
from difflab.interop.export import export_diffusers, scheduler_config

LABELS = torch.tensor([0, 3, 5, 9])
STEPS = 10  # divides T = 1000, so diffusers' DDIM "previous timestep" equals ours


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "diffusers"
    assert main(["export", str(tiny_run.path), "--diffusers", str(out)]) == 0
    return out


def diffusers_loop(unet, scheduler, **step_kwargs) -> torch.Tensor:
    """diffusers' own denoising loop from the noise difflab draws first for seed 1."""
    scheduler.set_timesteps(STEPS)
    x = torch.randn((len(LABELS), 1, 28, 28), generator=torch.Generator().manual_seed(1))
    for t in scheduler.timesteps:
        x = scheduler.step(unet(x, t, class_labels=LABELS).sample, t, x, **step_kwargs).prev_sample
    return x


def test_exported_folder_layout_and_weights(exported, tiny_run):
    unet = DifflabUNet2DModel.from_pretrained(exported / "unet")
    assert (exported / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    for name, tensor in tiny_run.model.state_dict().items():
        assert torch.equal(unet.unet.state_dict()[name], tensor), name
    config = json.loads((exported / "scheduler" / "scheduler_config.json").read_text())
    assert config["prediction_type"] == "v_prediction" and config["beta_schedule"] == "squaredcos_cap_v2"
    assert json.loads((exported / "difflab.json").read_text())["class_names"] == list(tiny_run.class_names)


def test_diffusers_ddim_samples_what_run_sample_does(exported, tiny_run):
    """Both clip x̂₀ to [-1, 1] and re-derive ε̂ from it; ε̂ of a v-model is exact (float64) on our side, so
    only diffusers' float32 ᾱ is left: ~1e-6. Without `use_clipped_model_output` the gap is ~0.1."""
    unet = DifflabUNet2DModel.from_pretrained(exported / "unet")
    theirs = diffusers_loop(unet, DDIMScheduler.from_config(scheduler_config(tiny_run.config, "ddim")),
                            use_clipped_model_output=True)
    ours = tiny_run.sample(LABELS, seed=1, solver="ddim", steps=STEPS, guidance=1.0, precision="fp32", autoguidance=1.0,
                           redraws=0)  # the exported scheduler has no filter classifier
    assert (ours - theirs).abs().max().item() < 1e-4
    assert theirs.abs().max() > 0.1  # not a trivially zero image


def test_diffusers_dpm_solver_samples_what_run_sample_does(exported, tiny_run):
    """The exported DPM-Solver++ clips x̂₀ as ours does (thresholding at sample_max_value 1); before it
    did not, and the two differed by up to 1.69."""
    unet = DifflabUNet2DModel.from_pretrained(exported / "unet")
    theirs = diffusers_loop(unet, DPMSolverMultistepScheduler.from_pretrained(exported, subfolder="scheduler"))
    ours = tiny_run.sample(LABELS, seed=1, solver="dpm++", steps=STEPS, guidance=1.0, precision="fp32", autoguidance=1.0,
                           redraws=0)  # the exported scheduler has no filter classifier
    assert (ours - theirs).abs().max().item() < 1e-4
    assert theirs.abs().max() > 0.1


@pytest.mark.parametrize("solver", ["dpm++", "ddim"])
def test_exported_pipeline_samples_what_run_sample_does(tiny_run, tmp_path, solver):
    """`DiffusionPipeline.from_pretrained(OUT)(**difflab.json's pipeline_call)` draws what difflab draws
    (unconditional = the null class), at 4 and 10 steps (both divide T, see export.py on DDIM)."""
    out = export_diffusers(tiny_run, tmp_path / "diffusers", solver=solver)
    pipe = DiffusionPipeline.from_pretrained(out)
    pipe.set_progress_bar_config(disable=True)
    call = json.loads((out / "difflab.json").read_text())["pipeline_call"]
    assert call == ({"eta": 0.0, "use_clipped_model_output": True} if solver == "ddim" else {})
    for steps in (4, STEPS):
        images = pipe(batch_size=3, num_inference_steps=steps, output_type="pt",
                      generator=torch.Generator().manual_seed(5), **call).images  # (3, 1, 28, 28) in [0, 1]
        ours = tiny_run.sample(n=3, seed=5, solver=solver, steps=steps, guidance=1.0, precision="fp32", autoguidance=1.0,
                               redraws=0)  # the exported pipeline has no filter classifier
        assert (images * 2 - 1 - ours).abs().max().item() < 1e-4, steps


@pytest.mark.parametrize("solver", ["dpm++", "ddim", "ddpm"])
def test_exported_thresholding_is_a_plain_clamp(tiny_run, solver):
    """diffusers' dynamic thresholding with sample_max_value = 1 is exactly clamp(x̂₀, -1, 1), whatever
    the percentile: s = quantile(|x̂₀|) is clamped to [1, 1]."""
    from diffusers import DDPMScheduler

    config = scheduler_config(tiny_run.config, solver)
    assert config["thresholding"] is True and config["sample_max_value"] == 1.0
    scheduler = {"dpm++": DPMSolverMultistepScheduler, "ddim": DDIMScheduler, "ddpm": DDPMScheduler}[solver]
    x0 = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 3  # most pixels beyond ±1
    x0[0] *= 0.1  # one image inside [-1, 1]: its quantile is below 1
    for ratio in (0.5, 0.995, 1.0):
        thresholded = scheduler.from_config({**config, "dynamic_thresholding_ratio": ratio})._threshold_sample(x0)
        assert torch.equal(thresholded, x0.clamp(-1, 1)), ratio


def test_diffusion_pipeline_loads_the_folder(exported):
    import importlib

    library, name = json.loads((exported / "model_index.json").read_text())["unet"]
    assert getattr(importlib.import_module(library), name) is DifflabUNet2DModel  # what diffusers looks up
    pipe = DiffusionPipeline.from_pretrained(exported)
    assert isinstance(pipe.unet, DifflabUNet2DModel)
    images = pipe(batch_size=1, num_inference_steps=2, output_type="np",
                  generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (1, 28, 28, 1)


def test_exported_folder_works_as_a_pipeline_run(exported, tiny_run):
    """`--pipeline EXPORTED` samples what the run does, CFG through the null class included."""
    from difflab.interop.pipeline import load_run_or_pipeline

    pipeline = load_run_or_pipeline(None, exported)
    assert pipeline.config.guidance == tiny_run.config.guidance and pipeline.num_classes == 10
    fp32 = dict(seed=2, steps=4, precision="fp32")  # the comparison is of the wiring, at fp32 rounding
    # the export carries CFG, not the guide network nor the filter: the run's autoguidance and redraws are off
    difference = (pipeline.sample(LABELS, **fp32)
                  - tiny_run.sample(LABELS, autoguidance=1.0, redraws=0, **fp32)).abs().max()
    assert difference.item() < 1e-4  # ᾱ from diffusers' float32 schedule vs ours in float64: ~1e-6


def test_export_refuses_a_non_empty_folder(tiny_run, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["export", str(tiny_run.path), "--diffusers", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_linear_schedule_exports_exact_betas(tiny_config):
    config = tiny_config.replace(schedule="linear", num_timesteps=200, objective="eps", solver="ddpm")
    sched = json.loads(json.dumps(scheduler_config(config)))
    from diffusers import DDPMScheduler

    from difflab.diffusion import NoiseSchedule

    theirs = DDPMScheduler.from_config(sched).alphas_cumprod.double()
    assert (theirs - NoiseSchedule("linear", 200).alphas_cumprod).abs().max() < 1e-6
    assert sched["prediction_type"] == "epsilon" and sched["_class_name"] == "DDPMScheduler"


def test_text_run_exports_with_encoder_hidden_states(text_run, tmp_path):
    out = tmp_path / "text-diffusers"
    assert main(["export", str(text_run.path), "--diffusers", str(out)]) == 0
    unet = DifflabUNet2DModel.from_pretrained(out / "unet")
    meta = json.loads((out / "difflab.json").read_text())
    assert meta["text_encoder"] == "minilm" and meta["class_prompts"] == text_run.class_prompts
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([100, 900])
    prompts = text_run.embed_prompts(["a handwritten seven", "the number 2"])  # (2, L, 384)
    ours = text_run.model(x, t, prompts)
    assert torch.equal(unet(x, t, encoder_hidden_states=prompts).sample, ours)


def test_export_refuses_an_unknown_solver(tiny_run, tmp_path):
    from difflab.errors import UserError

    with pytest.raises(UserError, match="'euler'"):
        export_diffusers(tiny_run, tmp_path / "out", solver="euler")

"""Progressive distillation: the target formula exactly, the distilled folder as a run, the CLI's errors."""

import json
import shutil

import pytest
import torch

from difflab.cli import main
from difflab.diffusion import NoiseSchedule, make_solver, timesteps
from difflab.distill import distill
from difflab.run import Run
from difflab.sampling import class_labels
from difflab.training.distill import DistillConfig, ddim_step, distill_target

ABAR = NoiseSchedule("cosine", 1000).alphas_cumprod


@pytest.mark.parametrize("t, t_mid, t_end", [(999, 874, 749), (749, 624, 499), (249, 124, -1), (999, 499, -1)])
def test_one_student_step_with_the_target_lands_on_the_teachers_two_steps(t, t_mid, t_end):
    g = torch.Generator().manual_seed(t)
    z_t = torch.randn((3, 1, 8, 8), generator=g, dtype=torch.float64)
    eps_1, eps_2 = (torch.randn(z_t.shape, generator=g, dtype=torch.float64) for _ in range(2))  # any teacher
    ddim = make_solver("ddim", ABAR, clip_x0=False)
    z_mid, _ = ddim.step(z_t, t, t_mid, eps_1)
    z_end, _ = ddim.step(z_mid, t_mid, t_end, eps_2)
    x_tilde = distill_target(z_t, z_end, torch.full((3,), t), torch.full((3,), t_end), ABAR)
    a, s = ABAR[t].sqrt(), (1 - ABAR[t]).sqrt()
    student_eps = (z_t - a * x_tilde) / s  # the noise estimate of a student whose x̂₀ is x̃
    one_step, x0 = ddim.step(z_t, t, t_end, student_eps)
    assert (one_step - z_end).abs().max().item() < 1e-5
    assert (x0 - x_tilde).abs().max().item() < 1e-5


def test_batched_ddim_step_matches_the_sampler_per_sample():
    g = torch.Generator().manual_seed(0)
    z, eps = torch.randn((4, 1, 8, 8), generator=g), torch.randn((4, 1, 8, 8), generator=g)
    t, t_next = torch.tensor([999, 749, 249, 61]), torch.tensor([874, 499, -1, -1])
    batched = ddim_step(z, t, t_next, eps, ABAR)
    ddim = make_solver("ddim", ABAR)  # clips x̂₀ like the sampler does
    for i in range(4):
        expected, _ = ddim.step(z[i : i + 1], int(t[i]), int(t_next[i]), eps[i : i + 1])
        assert (batched[i : i + 1] - expected).abs().max().item() < 1e-5


def test_rounds_halve_down_to_the_student_steps():
    assert DistillConfig(steps=4).rounds == [8, 4]
    assert DistillConfig(steps=1, teacher_steps=8).rounds == [4, 2, 1]


@pytest.fixture(scope="module")
def distilled(tiny_run, tmp_path_factory):
    config = DistillConfig(steps=2, teacher_steps=8, iterations=3, minutes_per_round=None, batch_size=8)
    return distill(tiny_run.path, config, out=tmp_path_factory.mktemp("distill") / "d2", progress=False, evaluate=False)


def test_distilled_folder_is_a_run_sampled_on_its_training_grid(distilled, tiny_run):
    run = Run.load(distilled.path)
    assert (run.config.solver, run.config.sample_steps, run.config.guidance) == ("ddim", 2, 1.0)
    info = json.loads((run.path / "distill.json").read_text())
    assert info["timesteps"] == timesteps(run.config.num_timesteps, run.config.sample_steps) == [999, 499]
    assert [r["student_steps"] for r in info["rounds"]] == [4, 2] and info["teacher_guidance"] == tiny_run.config.guidance
    assert info["teacher_autoguidance"] == tiny_run.config.autoguidance  # the run's own guidance, guide network and all
    assert run.config.autoguidance == 1.0 and run.sampler().autoguidance == 1.0  # baked into the student
    changed = [not torch.equal(p, q) for p, q in zip(run.model.parameters(), tiny_run.model.parameters())]
    assert any(changed)  # the student was trained
    assert (run.path / "samples" / "final.png").is_file()


def test_student_nfe_is_its_step_count(distilled):
    run = Run.load(distilled.path)
    calls = []
    run.model.register_forward_hook(lambda _m, inputs, _out: calls.append(inputs[0].shape[0]))
    images = run.sample(class_labels(10, 1), seed=1, redraws=0)  # the filter's redraws are extra forwards
    assert images.shape == (10, 1, 28, 28) and images.isfinite().all()
    assert calls == [10, 10]  # 2 steps, one forward of the batch each (no CFG pair)


def test_sample_cli_reads_the_distilled_run(distilled, tmp_path):
    out = tmp_path / "imgs"
    assert main(["sample", str(distilled.path), "--n", "4", "--out", str(tmp_path / "g.png"), "--out-dir", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert {(r["solver"], r["steps"], r["guidance"]) for r in rows} == {("ddim", 2, 1.0)}


def _denoise_copy(tiny_run, tmp_path):
    folder = tmp_path / "denoise"
    shutil.copytree(tiny_run.path, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "objective": "denoise"}))
    return folder


BAD = {
    "missing run": (lambda p, r: [str(p / "nope")], "run folder .* not found"),
    "steps 3": (lambda p, r: [str(r.path), "--steps", "3"], "--steps must be one of 1, 2, 4, 8, got 3"),
    "steps not below teacher": (lambda p, r: [str(r.path), "--steps", "8", "--teacher-steps", "8"], "must be fewer than"),
    "denoise run": (lambda p, r: [str(_denoise_copy(r, p))], "single-step denoiser"),
    "out holds a run": (lambda p, r: [str(r.path), "--out", str(r.path)], "already holds a run"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_cli_errors_are_one_line(case, tiny_run, tmp_path, capsys):
    make_args, message = BAD[case]
    assert main(["distill", *make_args(tmp_path, tiny_run), "--iterations", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error:") and err.count("\n") == 1, err
    assert pytest.importorskip("re").search(message, err), err


def test_a_distilled_run_distils_on(distilled, tmp_path):
    assert main(["distill", str(distilled.path), "--steps", "1", "--iterations", "2", "--batch-size", "4",
                 "--out", str(tmp_path / "d1"), "--no-progress", "--no-eval"]) == 0
    info = json.loads((tmp_path / "d1" / "distill.json").read_text())
    assert info["teacher_steps"] == 2 and info["timesteps"] == [999] and info["teacher_guidance"] == 1.0


def test_an_unconditional_run_distils_without_guidance(tmp_path):
    import difflab
    from difflab.training.config import TrainConfig

    config = TrainConfig(channels=(8, 16), batch_size=8, steps=3, minutes=None, conditional=False, warmup_steps=1,
                         num_sample_grids=0, sample_steps=2, checkpoint_minutes=100.0)
    teacher = difflab.train(config, out=tmp_path / "uncond", progress=False, evaluate=False)
    student = distill(teacher.path, DistillConfig(steps=1, teacher_steps=2, iterations=2, minutes_per_round=None,
                                                  batch_size=4), progress=False, evaluate=False)
    assert student.path == tmp_path / "uncond-distilled-1" and student.num_classes == 0
    assert student.sample(n=3).shape == (3, 1, 28, 28)


def test_a_text_run_distils_and_samples_from_prompts(text_run, tmp_path):
    """The guided teacher of a text run pairs each caption with the empty prompt; the student keeps prompts."""
    student = distill(text_run.path, DistillConfig(steps=1, teacher_steps=2, iterations=2, minutes_per_round=None,
                                                   batch_size=4), out=tmp_path / "text-d1", progress=False, evaluate=False)
    assert student.is_text and student.sample(prompts=["a handwritten seven"] * 2).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("field, value", [("minutes_per_round", float("nan")), ("lr", float("inf")), ("iterations", 0),
                                          ("batch_size", -1), ("lr", 100.0)])
def test_distill_budgets_refuse_nan_and_out_of_range(field, value):
    from difflab.errors import UserError

    with pytest.raises(UserError, match=f"--{field.replace('_', '-')} must be (in|at least) .*got {value}"):
        DistillConfig(**{field: value})

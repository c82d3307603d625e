"""Issue 19, class 9: options a combination would silently ignore are refused (when they cannot mean anything)
or warned about once on stderr (when harmless): `cli/train.py`, `cli/evaluate.py`, `Run.sampler`."""

from __future__ import annotations

import shutil

import pytest

from difflab.cli import main
from difflab.errors import UserError
from difflab.run import Run, RunFolder

REFUSED = {
    "train --resume with --out": (lambda t: ["train", "--resume", str(t / "r"), "--out", str(t / "o")], "--out"),
    "train --resume with --config": (lambda t: ["train", "--resume", str(t / "r"), "--config", str(t / "c.toml")],
                                     "--config"),
    "evaluate --images with --steps": (lambda t: ["evaluate", "--images", str(t / "i.npz"), "--dataset", "mnist5k",
                                                  "--steps", "4"], "--steps"),
    "evaluate --images with --seed": (lambda t: ["evaluate", "--images", str(t / "i.npz"), "--dataset", "mnist5k",
                                                 "--seed", "3"], "--seed"),
    "evaluate --images with --n": (lambda t: ["evaluate", "--images", str(t / "i.npz"), "--dataset", "mnist5k",
                                              "--n", "10"], "--n"),
    "evaluate RUN with --out": (lambda t: ["evaluate", str(t / "r"), "--out", str(t / "o")], "--out"),
    "evaluate --per-prompt without --prompts": (lambda t: ["evaluate", str(t / "r"), "--per-prompt", "5"],
                                                "--per-prompt"),
    "evaluate --prompts with --n": (lambda t: ["evaluate", str(t / "r"), "--prompts", "--n", "5"], "--n"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_ignored_combination_is_refused_in_one_line(case, tmp_path, capsys):
    argv, flag = REFUSED[case]
    assert main(argv(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error: ") and err.count("\n") == 1 and flag in err and "fix:" in err, err


def test_eta_with_a_solver_that_ignores_it_is_refused(tiny_run):
    assert tiny_run.sampler(solver="ddim", eta=0.5).eta == 0.5
    with pytest.raises(UserError, match="--eta 0.5 only changes the DDIM solver"):
        tiny_run.sampler(solver="dpm++", eta=0.5)


def test_a_distilled_run_sampled_at_other_steps_warns_once(tiny_run, tmp_path, capsys):
    path = shutil.copytree(tiny_run.path, tmp_path / "student")
    RunFolder(path).write_distill({"student_steps": 4})
    run = Run.load(path)
    run.sampler(solver="ddim", steps=4)
    assert capsys.readouterr().err == ""
    run.sampler(steps=8)
    run.sampler(steps=8)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "distilled for 4 DDIM steps" in err


def test_guidance_on_an_unconditional_run_warns(tiny_run, monkeypatch, capsys):
    monkeypatch.setattr(Run, "num_classes", property(lambda self: 0))
    tiny_run.sampler(guidance=3.0)
    assert "has no effect" in capsys.readouterr().err

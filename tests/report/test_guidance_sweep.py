"""The guidance sweep (`difflab.report.guidance`) and the report's "Guidance: the trade" section."""

from __future__ import annotations

import json
import re
import shutil
import types

import numpy as np
import pytest
from PIL import Image

from difflab import api
from difflab.errors import UserError
from difflab.report import guidance, html, samples
from difflab.report.guidance import default_strengths, guidance_sweep, sweep_strengths
from difflab.report.html import write_report
from difflab.report.images import grid
from difflab.run import Run
from difflab.sampling import class_labels

ROW_KEYS = {"w", "default", "accuracy", "fd_ratio", "fd", "fd_floor", "recall", "precision", "diversity"}


@pytest.fixture(scope="module")
def swept(tiny_run, tmp_path_factory):
    """A copy of the tiny run swept cheaply: w in (1, 2) plus the run's default, 2 images per class."""
    path = shutil.copytree(tiny_run.path, tmp_path_factory.mktemp("guidance") / "run")
    run = Run.load(path)
    return run, guidance_sweep(run, strengths=(1, 2), n_per_class=2, seed=0)


def test_default_strengths_bracket_the_default():
    assert default_strengths(3.0) == [1.0, 1.5, 3.0, 4.5, 6.0]
    assert default_strengths(2.0) == [1.0, 2.0, 3.0, 4.0]  # half of 2 is 1, already there
    assert default_strengths(1.0) == [1.0, 1.5, 2.0]
    assert default_strengths(60.0) == [1.0, 30.0, 60.0, 90.0]  # 120 is past the sampler's 100


def test_given_strengths_always_include_the_default_and_are_checked():
    assert sweep_strengths((2, 1, 2), 3.0) == [1.0, 2.0, 3.0]
    with pytest.raises(UserError, match="strengths"):
        sweep_strengths((1, 101), 3.0)
    with pytest.raises(UserError, match="strengths"):
        sweep_strengths((), 3.0)


@pytest.mark.parametrize("kind", ["unconditional", "denoise", "text", "distilled"])
def test_runs_without_a_sweep_are_skipped_quietly(kind, tmp_path):
    folder = types.SimpleNamespace(read_distill=lambda: {"student_steps": 4} if kind == "distilled" else None)
    run = types.SimpleNamespace(spec=types.SimpleNamespace(samplable=kind != "denoise"), folder=folder,
                                num_classes=0 if kind == "unconditional" else 10, is_text=kind == "text")
    assert guidance_sweep(run) is None


@pytest.mark.slow  # loads the mnist5k judge (QualityProbe)
def test_sweep_writes_rows_strips_and_frontier(swept):
    run, result = swept
    saved = json.loads(run.folder.sub("eval", "guidance_sweep.json").read_text())
    assert saved == result
    rows, default = saved["rows"], run.sampler().guidance
    assert [r["w"] for r in rows] == sorted({1.0, 2.0, default})
    assert [r["w"] for r in rows if r["default"]] == [default]
    assert all(set(r) >= ROW_KEYS for r in rows)
    assert all(0 <= r["accuracy"] <= 1 and r["fd_ratio"] > 0 and r["fd_floor"] > 0 for r in rows)
    assert saved["default"] == default and saved["method"] == run.sampler().guidance_method
    assert saved["interval"] == list(run.sampler().guidance_interval) and saved["n_per_class"] == 2
    for r in rows:
        strip = np.asarray(Image.open(run.folder.sub("samples", "guidance", f"w{r['w']:g}.png")))
        assert strip.shape == (2 * (28 + 4), 2 * (10 * 30 + 2))  # one row of 10 digits, 2 px gaps, enlarged 2x
    frontier = Image.open(run.folder.sub("plots", "guidance_frontier.png"))
    assert frontier.width > 300 and frontier.height > 200


@pytest.mark.slow  # loads the mnist5k judge (QualityProbe)
def test_strip_is_the_first_sample_of_each_class_at_its_strength(swept):
    run, result = swept
    images = run.sample(class_labels(10, 2), seed=0, guidance=1.0)  # the sweep's draw at w = 1
    expected = grid(images[::2], 10).repeat(2, 0).repeat(2, 1)[..., 0]  # enlarged 2x by nearest neighbour
    strip = np.asarray(Image.open(run.folder.sub("samples", "guidance", "w1.png")))
    assert np.array_equal(strip, expected)
    strongest = result["rows"][-1]["w"]
    other = np.asarray(Image.open(run.folder.sub("samples", "guidance", f"w{strongest:g}.png")))
    assert not np.array_equal(strip, other)  # the strength changes the picture


@pytest.mark.slow  # loads the mnist5k judge (QualityProbe)
def test_report_shows_the_trade_once(swept):
    run, result = swept
    page = write_report(run.path).read_text()
    assert "Guidance: the trade" in page
    for r in result["rows"]:
        default = " (default)" if r["default"] else ""
        assert (f"w = {r['w']:g}{default}: accuracy {100 * r['accuracy']:.1f}%, "
                f"FD {r['fd_ratio']:.1f}× the real floor, recall {r['recall']:.2f}") in page
    assert len(re.findall(r"<figcaption>w = [^<]* \(default\): accuracy", page)) == 1
    assert "the default sits where accuracy ≥ 99% at the lowest FD" in page
    assert page.index("Samples over training") < page.index("Guidance: the trade") < page.index("Evaluation")
    assert "Pictures: samples/guidance" not in page and "Pictures: plots" not in page  # shown once, in the section
    assert page.count('alt="judge accuracy against FD') == 1


def test_report_without_a_sweep_has_no_section(tiny_run):
    assert "Guidance: the trade" not in (tiny_run.path / "report.html").read_text()


def test_finish_run_sweeps_unless_evaluation_is_off(tiny_run, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(api, "judge_run", lambda run, **kw: {})
    monkeypatch.setattr(guidance, "guidance_sweep", lambda run, **kw: calls.append(kw))
    for name in ("write_class_grid", "write_trajectory"):  # only the order of the end-of-run steps matters here
        monkeypatch.setattr(samples, name, lambda run, path: None)
    monkeypatch.setattr(html, "write_report", lambda path: calls.append("report"))
    path = shutil.copytree(tiny_run.path, tmp_path / "run")
    api.finish_run(path, evaluate=False)
    assert calls == ["report"]
    api.finish_run(path, evaluate=True, progress=False)
    assert calls == ["report", {"verbose": False}, "report"]  # swept before the report is written


def test_too_few_images_for_a_probe_is_a_user_error(tiny_run):
    with pytest.raises(UserError, match="n_per_class >= 2"):
        guidance_sweep(tiny_run, n_per_class=1)


def test_the_target_is_99_percent_or_what_the_judge_gets_on_real_images():
    assert guidance.accuracy_target(0.994) == 0.99  # digits: the judge beats 99% on real digits
    assert guidance.accuracy_target(0.926) == 0.926  # Fashion-MNIST: no sample set is recognised more than the data
    rows = [{"w": 1.0, "accuracy": 0.90, "fd_ratio": 1.1}, {"w": 1.5, "accuracy": 0.93, "fd_ratio": 1.3},
            {"w": 3.0, "accuracy": 0.95, "fd_ratio": 2.0}]
    assert guidance.lowest_fd_at_target(rows) is None
    assert guidance.lowest_fd_at_target(rows, guidance.accuracy_target(0.926)) == 1.5


def test_report_states_a_per_dataset_target(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    rows = [{"w": w, "default": w == 1.5, "accuracy": a, "fd_ratio": f, "recall": 0.8} for w, a, f in
            ((1.0, 0.90, 1.1), (1.5, 0.93, 1.3))]
    sweep = {"rows": rows, "lowest_fd_at_target": 1.5, "accuracy_target": 0.926, "judge_real_accuracy": 0.926,
             "method": "cfg", "interval": [0.5, 1.0], "n": 20}
    (run / "eval").mkdir(exist_ok=True)
    (run / "eval" / "guidance_sweep.json").write_text(json.dumps(sweep))
    page = write_report(run, out=tmp_path / "r.html").read_text()
    assert ("the default sits where accuracy ≥ 92.6% (as often as the judge recognises real test images) at the "
            "lowest FD (in this run that is w = 1.5") in page

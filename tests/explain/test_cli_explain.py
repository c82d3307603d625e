"""`difflab explain ...` end to end on the tiny run: PNGs + JSON in --out, one-line errors with exit 2."""

import json
from pathlib import Path

import pytest

from difflab.cli import main
from difflab.diffusion import timesteps
from difflab.explain.emergence import appears_at
from difflab.run import Run


@pytest.fixture(scope="module")
def run_dir(tiny_run):
    return str(tiny_run.path if isinstance(tiny_run, Run) else tiny_run)


def _outputs(folder: Path, name: str) -> dict:
    assert sorted(p.suffix for p in folder.iterdir()).count(".png") >= 1
    return json.loads((folder / f"{name}.json").read_text())


def test_pca_writes_spectra_for_the_snapped_timesteps(run_dir, tmp_path):
    assert main(["explain", "pca", run_dir, "--n", "20", "--k", "3", "--timesteps", "999,600,0", "--steps", "2",
                 "--of", "x0", "--out", str(tmp_path)]) == 0
    numbers = _outputs(tmp_path, "pca")
    assert [(r["requested_t"], r["t"]) for r in numbers["timesteps"]] == [(999, 999), (600, 499), (0, 0)]
    assert all(len(r["explained_variance_ratio"]) == 3 for r in numbers["timesteps"])
    assert len(list(tmp_path.glob("*.png"))) == 3


def test_attribute_all_methods_reports_the_ig_delta(run_dir, tmp_path):
    assert main(["explain", "attribute", run_dir, "--timesteps", "999,0", "--steps", "2", "--label", "3",
                 "--target", "x0-ink", "--out", str(tmp_path)]) == 0
    numbers = _outputs(tmp_path, "attribute")
    assert {r["method"] for r in numbers["results"]} == {"saliency", "integrated-gradients", "grad-cam"}
    ig = [r for r in numbers["results"] if r["method"] == "integrated-gradients"]
    assert all(abs(r["convergence_delta"]) < 1e-2 for r in ig) and numbers["layer"] == "up.1.0.conv2"


def test_class_saliency_and_kernels(run_dir, tmp_path):
    assert main(["explain", "class-saliency", run_dir, "--timesteps", "500", "--steps", "2",
                 "--out", str(tmp_path / "c")]) == 0
    row = _outputs(tmp_path / "c", "class_saliency")["results"][0]
    assert row["t"] == 499 and row["mean_abs_difference"] > 0 and 0 <= row["difference_on_ink"] <= 1
    assert main(["explain", "kernels", run_dir, "--layer", "down.1.0", "--t", "300", "--out", str(tmp_path / "k")]) == 0
    numbers = _outputs(tmp_path / "k", "kernels")
    assert numbers["filters_shape"] == [8, 1, 3, 3] and numbers["activation_shape"] == [16, 14, 14]


class FakeJudge:
    """Believes class 3 with probability rising with the image's mean brightness; accuracy field for JSON."""

    accuracy = 1.0

    def probabilities(self, images):
        p3 = ((images.flatten(1).mean(1) + 1) / 2).clamp(0.01, 0.99)  # (N,)
        rest = ((1 - p3) / 9)[:, None].repeat(1, 10)
        rest[:, 3] = p3
        return rest


def test_emergence_measures_the_judged_curve(tiny_run, monkeypatch, tmp_path):
    import difflab.evaluation

    monkeypatch.setattr(difflab.evaluation, "load_judge", lambda *a, **k: FakeJudge())
    run_dir = str(tiny_run.path if isinstance(tiny_run, Run) else tiny_run)
    assert main(["explain", "emergence", run_dir, "--n", "10", "--steps", "3", "--out", str(tmp_path)]) == 0
    numbers = _outputs(tmp_path, "emergence")
    assert numbers["timesteps"] == timesteps(1000, 3) and numbers["step_fraction"] == [1 / 3, 2 / 3, 1.0]
    assert len(numbers["mean"]) == 3 and all(0.01 <= p <= 0.99 for p in numbers["mean"])
    assert set(numbers["appears"]) == {"0.5", "0.9"}


def test_appears_at_is_the_first_crossing_as_a_fraction():
    curve = [0.1, 0.3, 0.6, 0.95, 0.7]
    assert appears_at(curve, 0.5) == 0.6 and appears_at(curve, 0.9) == 0.8 and appears_at(curve, 0.99) is None


@pytest.mark.parametrize("argv, message", [
    (["pca", "--timesteps", "1000"], "timestep 1000 is outside 0..999"),
    (["pca", "--k", "1"], "--k 1 is too small"),
    (["attribute", "--layer", "nope"], "no layer named 'nope'"),
    (["attribute", "--label", "12"], "--label 12 is out of range"),
    (["kernels", "--t", "-1"], "--t -1 is outside"),
])
def test_bad_input_is_one_line_and_exit_2(run_dir, tmp_path, capsys, argv, message):
    assert main(["explain", argv[0], run_dir, *argv[1:], "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("difflab: error:") and len(err.strip().splitlines()) == 1

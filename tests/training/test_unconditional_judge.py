"""An unconditional run gets a quality figure too: the judge's confidence in its samples beside its
confidence on real images, and how the samples spread over the classes (no requested class: no accuracy)."""

from difflab.data import load_dataset
from difflab.evaluation import judge_unconditional


def test_real_images_score_as_real_and_a_one_class_model_shows_in_the_spread(mnist_judge):
    real = load_dataset("mnist5k", split="test")
    as_generated = judge_unconditional(mnist_judge, real.images, real.images)
    assert as_generated["mean_confidence"] == as_generated["judge_real_confidence"] > 0.8
    shares = as_generated["class_shares"]
    assert list(shares) == list(mnist_judge.class_names) and abs(sum(shares.values()) - 1) < 1e-6
    assert max(shares.values()) < 0.2  # real digits: every class drawn, none dominating

    ones = real.images[real.labels == 1]
    only_ones = judge_unconditional(mnist_judge, ones, real.images)["class_shares"]
    assert only_ones["1"] > 0.9 and min(only_ones.values()) == 0.0


def test_an_unconditional_run_ends_with_the_judge_confidence_line(tmp_path, tiny_config, mnist_judge, monkeypatch):
    import dataclasses

    import difflab
    from difflab.api import quality_line
    from difflab.report.html import summary_section

    run = difflab.train(dataclasses.replace(tiny_config, conditional=False), out=tmp_path / "run", progress=False)
    final = run.folder.read_eval("final")
    assert "accuracy" not in final and final["n"] == 1000 and 0 < final["mean_confidence"] <= 1
    assert abs(sum(final["class_shares"].values()) - 1) < 1e-6 and final["judge_real_confidence"] > 0.8
    line = quality_line(final)
    assert line.startswith("generated digits: judge confidence ") and "(real digits: " in line
    assert "judge confidence of generated images" in summary_section(run.folder, run.folder.read_metrics())
    assert not (run.path / "eval" / "guidance_sweep.json").exists()  # nothing to guide towards

    # the real side is a seeded random pick of the held-out split, never its first n (mnist5k's is class-sorted)
    import difflab.evaluation as evaluation
    from difflab.api import judge_run

    seen = {}

    def capture(judge, images, real):
        seen["real"] = real
        return judge_unconditional(judge, images, real)

    test = load_dataset("mnist5k", split="test")
    monkeypatch.setattr(evaluation, "judge_unconditional", capture)
    judge_run(run, n_per_class=5, name="few", progress=False)
    flat = test.images.flatten(1)
    picked = [int((flat == img.flatten()).all(1).nonzero()[0]) for img in seen["real"]]
    assert len(seen["real"]) == 50 and len(set(picked)) == 50
    assert len(set(test.labels[picked].tolist())) >= 8  # the first 50 would all be zeros

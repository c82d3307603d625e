"""A run that ended too early says so loudly, with the fix: `train` (stderr), the report, model.json and
`sample`; the report and `sample` state the steps, images seen and wall time of the model they show."""

import json

from difflab.cli import main

TINY = ["--channels", "8,16", "--batch-size", "16", "--log-every", "4", "--sample-steps", "2",
        "--num-sample-grids", "0", "--no-progress", "--no-eval"]


def test_a_short_run_warns_in_train_report_and_sample(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--steps", "6", "--out", str(run), *TINY]) == 0
    said = capsys.readouterr()
    warning = "WARNING: only 6 optimizer steps (default 2,000): samples of so short a run are mostly noise; fix: --steps"
    assert warning in said.err and "WARNING" not in said.out
    page = (run / "report.html").read_text()
    assert warning in page and page.index(warning) < page.index('class="summary"')  # at the top
    assert "trained 6 steps, 96 images seen (" in page  # 6 steps of batch 16
    assert json.loads((run / "model.json").read_text())["training"]["warning"].startswith(warning)

    assert main(["sample", str(run), "--n", "2", "--steps", "1", "--out", str(tmp_path / "s.png")]) == 0
    said = capsys.readouterr()
    assert f"run {run}: 6 steps, 96 images seen (" in said.out and " min wall" in said.out
    assert said.err.count(warning) == 1

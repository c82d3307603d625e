"""The report says what a sample grid's rows are: every class, 10 of many (evenly spaced), or unconditional."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from difflab.report.html import write_report
from difflab.report.images import save_png


@pytest.mark.parametrize(("classes", "conditional", "words"), [
    (10, True, "final (EMA weights, one row of 10 samples per class)"),
    (12, True, "final (EMA weights, one row of 10 samples for each of 10 of the 12 classes, evenly spaced)"),
    (10, False, "final (EMA weights, 100 unconditional samples)"),
])
def test_the_final_grid_caption_says_what_its_rows_are(tiny_run, tmp_path, classes, conditional, words):
    run = tmp_path / "run"
    shutil.copytree(tiny_run.path, run)
    meta = json.loads((run / "model.json").read_text())
    (run / "model.json").write_text(json.dumps({**meta, "class_names": [f"c{i}" for i in range(classes)]}))
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "conditional": conditional}))
    save_png(np.zeros((8, 8, 1), np.uint8), run / "samples" / "final.png")
    page = write_report(run, out=tmp_path / "r.html").read_text()
    assert words in page and "one row per class" not in page

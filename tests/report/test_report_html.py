"""`difflab report`: one self-contained page holding every picture and evaluation of a run folder."""

from __future__ import annotations

import re

import pytest

from difflab.cli import main
from difflab.errors import UserError
from difflab.report.curves import coverage_curves, seconds_per_epoch
from difflab.report.html import write_report
from difflab.report.page import CSP
from difflab.report.tables import json_tables


def test_train_writes_the_report(tiny_run):
    page = (tiny_run.path / "report.html").read_text()
    assert "Training curves" in page and "Configuration" in page


def test_report_inlines_every_picture_with_captions(rich_run):
    page = write_report(rich_run).read_text()
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    pngs = [p for p in rich_run.rglob("*.png") if p.relative_to(rich_run).parts[0] != "state"]
    # every PNG of the folder, plus the speed figure and the accuracy–coverage plot drawn from judge.json
    assert len(sources) == len(pngs) + 2
    assert f'content="{CSP}"' in page and "<script" not in page
    assert "PCA of x_t — &lt;b&gt;not bold&lt;/b&gt;" in page  # caption from the JSON beside it, escaped
    assert "sdedit strip" in page and "loose figure" in page  # captions from file names
    judge = page.index("Judge report")
    assert judge < page.index('alt="confusion"') < page.index("Pictures: edit")  # right after its JSON
    assert "true \\ predicted" in page and "Judge report" in page and "closest_pairs" in page


def test_half_written_json_does_not_break_the_report(rich_run):
    (rich_run / "eval" / "partial.json").write_text('{"accuracy": 0.')
    assert "not readable as JSON" in write_report(rich_run).read_text()


def test_metrics_line_cut_short_by_a_crash_is_skipped(rich_run):
    (rich_run / "plots" / "loss.png").unlink()
    with open(rich_run / "metrics.jsonl", "a") as f:
        f.write('{"step": 99, "lo')
    page = write_report(rich_run).read_text()
    assert "<span>steps</span><b>60</b>" in page  # the last whole line (the tiny run's 60 steps), not the cut one


def test_tables_for_each_json_shape():
    html = json_tables({"n": 3, "per_class": {"0": 0.5, "1": 1.0}, "classes": ["x", "y"],
                        "confusion": [[1, 0], [0, 1]], "rows": [{"a": 1}, {"b": 2}], "nested": {"deep": {"k": 1}}})
    assert "<th>n</th><td>3</td>" in html
    assert "<th>x</th><th>y</th>" in html  # matrix columns named by the sibling class list
    assert "true \\ predicted" in html and "<th>a</th><th>b</th>" in html and "<h4>deep</h4>" in html


def test_seconds_per_epoch_from_metrics():
    rows = [{"epoch": 0.5, "elapsed": 5.0}, {"epoch": 1.0, "elapsed": 10.0}, {"epoch": 2.0, "elapsed": 30.0}]
    assert seconds_per_epoch(rows) == [10.0, 20.0]
    assert seconds_per_epoch(rows[:1]) == []


def test_coverage_curves_found_at_any_depth():
    found = coverage_curves({"idk": {"coverage": [1, 0.5], "accuracy": [0.9, 1.0]}, "coverage": 3})
    assert [name for name, _, _ in found] == ["idk"]


def test_cli_report_prints_path_and_opens(rich_run, capsys, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    assert main(["report", str(rich_run), "--open"]) == 0
    assert capsys.readouterr().out.strip() == f"report: {rich_run / 'report.html'}"
    assert opened == [(rich_run / "report.html").resolve().as_uri()]


def test_cli_report_rejects_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error:") and "not a run folder" in err and len(err.splitlines()) == 1


def test_unwritable_out_is_a_user_error(rich_run, tmp_path):
    with pytest.raises(UserError, match="--out"):
        write_report(rich_run, out=tmp_path / "missing" / "r.html")


def test_report_links_nothing_and_changes_no_run_file(rich_run):
    before = {p: p.read_bytes() for p in rich_run.rglob("*") if p.is_file()}
    page = write_report(rich_run).read_text()
    assert not re.search(r'(src|href)="(https?:|//)', page)
    assert all(p.read_bytes() == data for p, data in before.items() if p.name != "report.html")

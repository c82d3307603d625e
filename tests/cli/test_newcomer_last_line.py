"""Issue 20: `evaluate` and `explain` end with ONE line saying what they wrote where (the work is stubbed:
these check the command line's wording, the suites have their own tests)."""

from __future__ import annotations

import json
from types import SimpleNamespace

from difflab.cli import main


def test_explain_ends_with_one_line_naming_the_folder_and_files(tmp_path, monkeypatch, capsys):
    from difflab.explain import commands
    from difflab.run import Run

    def kernels(run, out, *, seed, **options):
        return [out / "kernels.png", out / "maps" / "conv_in.png", out / "kernels.json"], {}

    monkeypatch.setattr(Run, "load", classmethod(lambda cls, *a, **k: SimpleNamespace()))
    monkeypatch.setattr(commands, "explain_kernels", kernels)
    assert main(["explain", "kernels", str(tmp_path / "run"), "--out", str(tmp_path / "k")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote 3 file(s) to {tmp_path / 'k'}/: kernels.png, maps/conv_in.png, kernels.json"]


def test_evaluate_json_copy_is_on_the_one_wrote_line(tmp_path, monkeypatch, capsys):
    from difflab.evaluation import suite, summary
    from difflab.run import Run

    monkeypatch.setattr(Run, "load", classmethod(lambda cls, *a, **k: SimpleNamespace()))
    monkeypatch.setattr(suite, "evaluate_run", lambda run, **kwargs: {"accuracy": 0.5})
    monkeypatch.setattr(summary, "suite_lines", lambda result, width: ["numbers", "  wrote RUN/eval/x.json"])
    copy = tmp_path / "copy.json"
    assert main(["evaluate", str(tmp_path / "run"), "--json", str(copy)]) == 0
    assert capsys.readouterr().out.splitlines() == ["numbers", f"  wrote RUN/eval/x.json, and a copy in {copy}"]
    assert json.loads(copy.read_text()) == {"accuracy": 0.5}

"""A run trained on per-image captions ends with its prompts evaluated: judge accuracy and caption retrieval on
trained and held-out captions, printed, saved beside the judge figure and shown in the report."""

import json

import pytest

from difflab.cli import main
from difflab.data import load_dataset
from difflab.errors import UserError
from difflab.training import end


@pytest.mark.slow  # renders emoji:20, trains a 2-step text model, its judge and the retrieval encoder (~40 s)
def test_an_emoji_caption_run_reports_caption_retrieval(tmp_path, capsys):
    try:
        load_dataset("emoji:20", split="train")
    except UserError as err:  # the font or emoji-test.txt is not installed here
        pytest.skip(str(err))
    out = tmp_path / "run"
    code = main(["train", "--dataset", "emoji:20", "--conditioning", "text", "--steps", "2", "--no-progress",
                 "--channels", "8,16", "--batch-size", "8", "--sample-steps", "2", "--num-sample-grids", "0",
                 "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0 and "Traceback" not in printed.err
    assert printed.out.count("caption retrieval R@1 / R@5 among") == 2  # the trained and the held-out set
    saved = [json.loads(p.read_text()) for p in (out / "eval").glob("prompts-*.json")]
    assert len(saved) == 1 and set(saved[0]["retrieval"]) == {"trained", "held-out"}
    assert saved[0]["per_prompt"] == end.PROMPTS_PER_PROMPT
    assert "retrieval" in (out / "report.html").read_text()


@pytest.mark.slow  # a 1-step text model on ~100 emoji subgroups, no end-of-run work (~15 s)
def test_many_caption_classes_skip_the_caption_evaluation_with_the_command_to_run(tmp_path):
    from difflab.run import Run

    try:
        classes = load_dataset("emoji:subgroup:6", split="train").num_classes
    except UserError as err:
        pytest.skip(str(err))
    assert classes > end.PROMPTS_MAX_CLASSES
    out = tmp_path / "run"
    assert main(["train", "--dataset", "emoji:subgroup:6", "--conditioning", "text", "--steps", "1", "--no-eval",
                 "--channels", "8,16", "--batch-size", "8", "--num-sample-grids", "0", "--no-progress",
                 "--out", str(out)]) == 0
    todo = end.plan(Run.load(out), evaluate=True)
    assert todo.prompts == 0, todo
    assert "--prompts --per-prompt 1" in todo.skipped.get("caption evaluation", ""), todo

"""Issue 20: every `--help` ends with worked examples, and every example parses (so none can rot)."""

from __future__ import annotations

import shlex

import pytest

from difflab.cli import SUBCOMMANDS, build_parser
from difflab.cli.examples import EXAMPLES, WORKFLOW, all_examples


@pytest.mark.parametrize("line", all_examples())
def test_every_example_parses(line):
    words = shlex.split(line)
    assert words[0] == "difflab"
    args = build_parser().parse_args(words[1:])  # a renamed or removed flag raises UserError here
    assert args.command == words[1] and callable(args.func)


def test_every_subcommand_has_examples_in_its_help(capsys):
    assert set(EXAMPLES) == set(SUBCOMMANDS)
    for name in SUBCOMMANDS:
        with pytest.raises(SystemExit):
            build_parser().parse_args([name, "--help"])
        text = capsys.readouterr().out
        assert "examples:" in text and EXAMPLES[name][0][0] in text, name


def test_top_level_help_lists_the_typical_order(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    order = [text.index(f"difflab {step} ") for step in ("train", "sample", "evaluate", "report", "studio")]
    assert order == sorted(order) and [cmd.split()[1] for cmd, _ in WORKFLOW] == ["train", "sample", "evaluate",
                                                                                  "report", "studio"]


def test_a_nested_command_shows_only_its_own_examples(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["explain", "pca", "--help"])
    text = capsys.readouterr().out
    assert "difflab explain pca" in text and "difflab explain kernels" not in text

"""Issue 20: one "difflab:" prefix per message. argparse mistakes went through `Parser.error`, which adds
`self.prog` ("difflab", "difflab edit sdedit") after main's own "difflab: error:" prefix; now it names only
the sub-command ("edit sdedit: ...")."""

from __future__ import annotations

import pytest

from difflab.cli import main


@pytest.mark.parametrize("argv", [[], ["edit"], ["edit", "sdedit"], ["sweep"], ["export", "x"]])
def test_argument_mistakes_carry_one_prefix(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab: error: ") and err.count("difflab") == 1, err

"""`difflab` command line: one entry point, one module per sub-command.

Each module in `SUBCOMMANDS` has `register(subparsers)`, which adds its parser and sets `func`.
User mistakes print one line, `difflab: error: ...`, and exit with code 2 (never a traceback).
"""

from __future__ import annotations

import importlib
import sys

from difflab.cli.options import Parser
from difflab.errors import Stopped, UserError

SUBCOMMANDS = ("train", "sample", "distill", "edit", "evaluate", "report", "explain", "sweep", "export", "studio")  # modules of difflab.cli, in --help order


def build_parser() -> Parser:
    parser = Parser(prog="difflab", description="Train, sample, edit, evaluate and explain diffusion models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"difflab.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args) or 0
    except Stopped as err:  # saved and stopped on a signal: not an error
        print(f"difflab: {err}", file=sys.stderr)
        return err.exit_code
    except UserError as err:
        print(f"difflab: error: {err}", file=sys.stderr)  # one line: UserError escapes line breaks itself
        return 2
    except KeyboardInterrupt:
        print("difflab: interrupted", file=sys.stderr)
        return 130

"""`difflab` command line: one entry point, one module per sub-command.

Each module in `SUBCOMMANDS` has `register(subparsers)`, which adds its parser and sets `func`.
User mistakes print one line, `difflab: error: ...`, and exit with code 2 (never a traceback).
Every parser gets `-q/--quiet` and its worked examples (cli/examples.py) here, not in each module.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from difflab import progress
from difflab.cli.examples import epilog, top_epilog
from difflab.cli.options import Parser, add_quiet_option
from difflab.errors import Stopped, UserError
from difflab.signals import signal_name, stopped_by, terminate_as_interrupt

SUBCOMMANDS = ("train", "sample", "distill", "edit", "evaluate", "report", "explain", "sweep", "export", "studio")  # modules of difflab.cli, in --help order


def build_parser() -> Parser:
    parser = Parser(prog="difflab", description="Train, sample, edit, evaluate and explain diffusion models.",
                    epilog=top_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add_quiet_option(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in SUBCOMMANDS:
        importlib.import_module(f"difflab.cli.{name}").register(sub)
    _finish(parser, "")
    return parser


def _finish(parser: argparse.ArgumentParser, command: str) -> None:
    """Below `parser`, every sub-command (nested too) takes -q and shows its examples."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, child in action.choices.items():
            path = f"{command} {name}".strip()
            add_quiet_option(child, default=argparse.SUPPRESS)  # SUPPRESS: `difflab -q train` is not undone
            child.epilog = child.epilog or epilog(path)
            child.formatter_class = argparse.RawDescriptionHelpFormatter
            _finish(child, path)


def main(argv: list[str] | None = None) -> int:
    previous = progress.set_quiet(None)
    try:
        args = build_parser().parse_args(argv)
        progress.set_quiet(True if args.quiet else previous)  # else $DIFFLAB_QUIET (or a caller's setting)
        with terminate_as_interrupt():  # SIGTERM stops every command as Ctrl-C does: one line, exit 143
            return args.func(args) or 0
    except Stopped as err:  # saved and stopped on a signal: not an error
        progress.end_line()
        print(f"difflab: {err}", file=sys.stderr)
        return err.exit_code
    except UserError as err:
        progress.end_line()
        print(f"difflab: error: {err}", file=sys.stderr)  # one line: UserError escapes line breaks itself
        return 2
    except KeyboardInterrupt as err:  # a command without its own words for a stop (`signals.Stopping`)
        progress.end_line()
        name = signal_name(err)
        print(f"difflab: {stopped_by(name)}", file=sys.stderr)  # Ctrl-C: "interrupted"
        return Stopped.EXIT.get(name, 130)
    finally:
        progress.set_quiet(previous)

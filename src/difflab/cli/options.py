"""Shared argument types and option groups of the command line."""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing

from difflab.errors import UserError
from difflab.training.config import TrainConfig


class Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (no usage dump); `main` turns them into exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        where = self.prog.removeprefix("difflab").strip()  # `main` prints "difflab: error: " once
        raise UserError(f"{where}: {message}" if where else message)


def number(kind):
    """An argparse type for int/float whose error names the bad text."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if not math.isfinite(value):  # NaN slips past every `value <= 0` check downstream
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        return value

    parse.__name__ = kind.__name__
    return parse


def int_list(text: str) -> tuple[int, ...]:
    """"3,5,7" -> (3, 5, 7)."""
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def float_list(text: str) -> tuple[float, ...]:
    """"0.1,0.5" -> (0.1, 0.5)."""
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _field_type(field: dataclasses.Field):
    hint = typing.get_type_hints(TrainConfig)[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] if isinstance(hint, types.UnionType) else [hint]
    base = args[0]
    if typing.get_origin(base) is tuple:
        return float_list if typing.get_args(base)[0] is float else int_list
    return {int: number(int), float: number(float), str: str, bool: bool}.get(base, str)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """One `--key` per `TrainConfig` field (defaults None: only what the user gives overrides)."""
    group = parser.add_argument_group("training configuration (defaults in parentheses)")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = _field_type(field)
        default = field.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        if kind is bool:
            group.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=None,
                               help=f"({shown})")
        else:
            group.add_argument(flag, dest=field.name, type=kind, default=None, metavar=field.name.upper(),
                               help=f"({shown})")


def config_overrides(args: argparse.Namespace) -> dict:
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if getattr(args, f.name) is not None}


def add_sampler_options(parser: argparse.ArgumentParser, *, redraws: bool = False) -> None:
    """--solver --steps --guidance --eta --seed --device, shared by every command that samples; `redraws`: also
    --redraws, for the commands that draw new images (an edit starts from the user's image, never redrawn)."""
    parser.add_argument("--solver", choices=("ddpm", "ddim", "dpm++"), help="(the run's default)")
    parser.add_argument("--steps", type=number(int), help="solver steps (the run's default)")
    parser.add_argument("--guidance", type=number(float), help="classifier-free guidance scale w (the run's default)")
    parser.add_argument("--guidance-method", choices=("cfg", "auto"),
                        help="cfg: classifier-free; auto: autoguidance by the run's guide network (the run's default)")
    parser.add_argument("--guidance-interval", metavar="LO,HI",
                        help="guide only where t/T lies in [LO, HI], e.g. 0.2,0.7 (the run's default)")
    parser.add_argument("--guidance-rescale", type=number(float), help="CFG rescale φ in [0, 1] (the run's default)")
    parser.add_argument("--autoguidance", type=number(float), metavar="W",
                        help="add autoguidance by the run's guide network to CFG, strength W >= 1 (1: off)")
    if redraws:
        parser.add_argument("--redraws", type=number(int), metavar="N",
                            help="draw an image the run's filter classifier rejects at most N more times; 0: no "
                                 "filter (the run's default)")
    parser.add_argument("--eta", type=number(float), default=0.0, help="DDIM noise (0: deterministic)")
    parser.add_argument("--seed", type=number(int), default=0)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="network precision; auto: bf16 on CPUs with AVX512-BF16/AMX (2x img/s), else fp32")


def sampler_settings(args: argparse.Namespace) -> dict:
    """The sampler keyword arguments of `Run.sample`, checked."""
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    if args.guidance is not None and args.guidance < 0:
        raise UserError(f"--guidance must be >= 0, got {args.guidance}")
    if args.eta < 0:
        raise UserError(f"--eta must be >= 0, got {args.eta}")
    return dict(solver=args.solver, steps=args.steps, guidance=args.guidance, eta=args.eta, precision=args.precision,
                guidance_method=args.guidance_method, guidance_interval=args.guidance_interval,
                guidance_rescale=args.guidance_rescale, autoguidance=args.autoguidance,
                redraws=getattr(args, "redraws", None))


def add_quiet_option(parser: argparse.ArgumentParser, *, default) -> None:
    """-q/--quiet: no progress bars or stage lines (results, "wrote ..." and errors still print)."""
    parser.add_argument("-q", "--quiet", action="store_true", default=default,
                        help="no progress bars or stage lines (results and errors still print)")

"""`difflab` command line: one entry point, one sub-command per job.

User mistakes print one line, `difflab: error: ...`, and exit with code 2 (never a traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path

from difflab.errors import UserError
from difflab.training.config import TrainConfig


class Parser(argparse.ArgumentParser):
    """argparse that reports errors in one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> typing.NoReturn:
        raise UserError(f"{self.prog}: {message}")


def _number(kind):
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None

    parse.__name__ = kind.__name__
    return parse


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def _field_type(field: dataclasses.Field):
    hint = typing.get_type_hints(TrainConfig)[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] if isinstance(hint, types.UnionType) else [hint]
    base = args[0]
    if typing.get_origin(base) is tuple:
        return _int_list
    return {int: _number(int), float: _number(float), str: str, bool: bool}.get(base, str)


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


def build_parser() -> Parser:
    parser = Parser(prog="difflab", description="Train, sample, edit, evaluate and explain diffusion models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    train = sub.add_parser("train", help="train a model and write a run folder")
    train.add_argument("--out", type=Path, help="run folder (default runs/<date-time>)")
    train.add_argument("--resume", type=Path, metavar="RUN", help="continue a run folder exactly where it stopped")
    train.add_argument("--config", type=Path, help="TOML or JSON file of config keys (flags override it)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--no-eval", action="store_true", help="skip the end-of-run judge figure")
    add_config_options(train)

    sample = sub.add_parser("sample", help="generate images from a run")
    sample.add_argument("run", type=Path)
    sample.add_argument("--label", type=_int_list, help="class id(s), e.g. 7 or 3,5 (default: every class in turn)")
    sample.add_argument("--n", type=_number(int), default=None, help="number of images (default 100, or 16 with --label)")
    _sampler_options(sample)
    sample.add_argument("--out", type=Path, default=Path("samples.png"), help="PNG grid (default samples.png)")
    sample.add_argument("--save-npz", type=Path, metavar="FILE", help="also save images (uint8) and labels")

    evaluate = sub.add_parser("evaluate", help="judge accuracy and confidence of generated images per class")
    evaluate.add_argument("run", type=Path)
    evaluate.add_argument("--n", type=_number(int), default=1000, help="images in all (split evenly over classes)")
    _sampler_options(evaluate)
    evaluate.add_argument("--json", type=Path, help="also write the result here")
    return parser


def _sampler_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--solver", choices=("ddpm", "ddim", "dpm++"), help="(the run's default)")
    parser.add_argument("--steps", type=_number(int), help="solver steps (the run's default)")
    parser.add_argument("--guidance", type=_number(float), help="classifier-free guidance scale w (the run's default)")
    parser.add_argument("--eta", type=_number(float), default=0.0, help="DDIM noise (0: deterministic)")
    parser.add_argument("--seed", type=_number(int), default=0)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args) or 0
    except UserError as err:
        print(f"difflab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("difflab: interrupted", file=sys.stderr)
        return 130


def _train(args) -> int:
    from difflab.api import quality_line, train

    base = TrainConfig.load(args.config) if args.config else None
    run = train(base, out=args.out, resume=args.resume, progress=not args.no_progress,
                evaluate=not args.no_eval, **config_overrides(args))
    print(f"run folder: {run.path}")
    final = run.path / "eval" / "final.json"
    if final.exists():
        import json

        print(quality_line(json.loads(final.read_text())))
    return 0


def _settings(args) -> dict:
    if args.steps is not None and args.steps < 1:
        raise UserError(f"--steps must be at least 1, got {args.steps}")
    if args.guidance is not None and args.guidance < 0:
        raise UserError(f"--guidance must be >= 0, got {args.guidance}")
    return dict(solver=args.solver, steps=args.steps, guidance=args.guidance, eta=args.eta)


def _sample(args) -> int:
    import numpy as np

    from difflab.report.images import save_grid, to_uint8
    from difflab.run import Run

    run = Run.load(args.run, device=args.device)
    labels, nrow = _sample_labels(args, run.num_classes)
    n = len(labels) if labels is not None else (args.n or 100)
    images = run.sample(labels, n=n, seed=args.seed, **_settings(args))
    save_grid(images, args.out, nrow=nrow or max(1, round(n**0.5)))
    print(f"wrote {n} images to {args.out}")
    if args.save_npz:
        label_array = labels.numpy() if labels is not None else np.full(n, -1)  # -1: unconditional
        np.savez_compressed(args.save_npz, images=to_uint8(images), labels=label_array)
        print(f"wrote images and labels to {args.save_npz}")
    return 0


def _sample_labels(args, num_classes: int):
    """Labels to sample and the grid width (one row per class when every class is drawn)."""
    import torch

    if args.n is not None and args.n < 1:
        raise UserError(f"--n must be at least 1, got {args.n}")
    if not num_classes:
        if args.label:
            raise UserError("this run is unconditional; fix: drop --label")
        return None, None
    if args.label:
        n = args.n or 16
        return torch.tensor(args.label).repeat(-(-n // len(args.label)))[:n].sort().values, None
    n = args.n or 100
    per_class = -(-n // num_classes)
    labels = torch.arange(num_classes).repeat_interleave(per_class)[:n]
    return labels, per_class if n % num_classes == 0 else None


def _evaluate(args) -> int:
    import json

    from difflab.api import evaluate_run
    from difflab.run import Run

    run = Run.load(args.run, device=args.device)
    if args.n < run.num_classes:
        raise UserError(f"--n must be at least the number of classes ({run.num_classes}), got {args.n}")
    result = evaluate_run(run, n_per_class=args.n // max(1, run.num_classes), seed=args.seed, **_settings(args))
    print(f"{'class':>12} {'accuracy':>9}")
    for name, acc in result["per_class_accuracy"].items():
        print(f"{name:>12} {100 * acc:8.1f}%")
    print(f"{'all':>12} {100 * result['accuracy']:8.1f}%   mean confidence {100 * result['mean_confidence']:.1f}%"
          f"   (judge on real held-out images: {100 * result['judge_real_accuracy']:.1f}%)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


COMMANDS = {"train": _train, "sample": _sample, "evaluate": _evaluate}

if __name__ == "__main__":
    sys.exit(main())

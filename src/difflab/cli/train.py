"""`difflab train`: train a model and write a run folder."""

from __future__ import annotations

import sys
from pathlib import Path

from difflab.cli.options import add_config_options, config_overrides, number
from difflab.errors import UserError
from difflab.run.outputs import guard
from difflab.training.config import TrainConfig

BUDGET = ("steps", "epochs", "minutes")


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model and write a run folder")
    p.add_argument("--out", type=Path, help="run folder (default runs/<date-time>)")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue a run folder exactly where it stopped")
    p.add_argument("--allow-rng-reset", action="store_true",
                   help="resume a snapshot that lacks RNG state (continues, but not bitwise exactly)")
    p.add_argument("--config", type=Path, help="TOML or JSON file of config keys (flags override it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-eval", action="store_true", help="skip the end-of-run judge figure and guidance sweep")
    p.add_argument("--processes", type=number(int), metavar="N",
                   help="train on N local processes (torch.distributed; --batch-size stays the global batch); "
                        "not needed under torchrun")
    add_config_options(p)
    p.set_defaults(func=guard(run))


def _check_combinations(args) -> None:
    """Options that a combination would silently ignore: refused when they cannot apply, else one warning."""
    if args.resume is not None and args.out is not None and args.out.resolve() != args.resume.resolve():
        raise UserError(f"--resume continues {args.resume} in place, so --out {args.out} would be ignored; fix: drop "
                        "--out (to continue in a new folder, copy the run folder there and --resume the copy)")
    if args.resume is not None and args.config is not None:
        raise UserError(f"--resume continues with the config saved in {args.resume}, so --config {args.config} would "
                        "be ignored; fix: drop --config and give the keys to change as flags (e.g. --steps 4000)")
    if args.allow_rng_reset and args.resume is None:
        print("difflab: warning: --allow-rng-reset only applies with --resume; ignored", file=sys.stderr)


def run(args) -> int:
    from difflab.api import quality_line, train
    from difflab.training.adequacy import record

    _check_combinations(args)  # the run folder itself is checked writable before training (api.check_writable)
    base = TrainConfig.load(args.config) if args.config else None
    overrides = config_overrides(args)
    if any(key in overrides for key in BUDGET):  # a budget given here replaces the --config file's or resumed run's
        overrides = {**dict.fromkeys(BUDGET), **overrides}
    trained = train(base, out=args.out, resume=args.resume, progress=not args.no_progress,
                    evaluate=not args.no_eval, allow_rng_reset=args.allow_rng_reset, processes=args.processes,
                    **overrides)
    if trained is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    print(f"run folder: {trained.path}")
    final = trained.folder.read_eval("final")
    if final:
        print(quality_line(final))
    warning = record(trained.folder)  # also in model.json; the report shows it at the top
    if warning:
        print(warning, file=sys.stderr)
    print(f"report: {trained.folder.report_path} (open it in a web browser)")
    return 0

"""`difflab sweep sweep.toml`: train and judge a grid or list of runs; a sorted results table."""

from __future__ import annotations

from pathlib import Path

from difflab.cli.options import number
from difflab.run.outputs import check_folder, guard


def register(sub) -> None:
    p = sub.add_parser("sweep", help="train and judge a grid/list of configurations (resumable)")
    p.add_argument("spec", type=Path, help="TOML with [base], [grid] and/or [[runs]], [evaluate]")
    p.add_argument("--out", type=Path, help="sweep folder (default sweeps/<spec name>)")
    p.add_argument("--parallel", type=number(int), default=1, help="runs at once, in processes (1)")
    p.set_defaults(func=guard(run))


def run(args) -> int:
    from difflab.sweep import SweepSpec, fmt_value, prepare_folder, run_sweep

    if args.out is not None:
        check_folder(args.out, "--out")
    spec = SweepSpec.load(args.spec)
    out = prepare_folder(spec, args.spec, args.out)
    print(f"sweep of {len(spec.runs)} run(s) into {out}")
    rows = run_sweep(spec, out, parallel=args.parallel)
    metric = spec.evaluate.metric
    best = rows[0] if rows else {}
    print(f"best by {metric}: {best.get('run')} ({metric} {fmt_value(metric, best.get(metric))}, "
          f"guidance {fmt_value('guidance', best.get('guidance'))})")
    print(f"wrote {len(spec.runs)} run folder(s) to {out / 'runs'} and the table to {out}/results.md, .csv, .png")
    return 0

"""`difflab report RUN`: write RUN/report.html, one self-contained page of everything in the run folder."""

from __future__ import annotations

from pathlib import Path

from difflab.run.outputs import check_file, check_folder, guard


def register(sub) -> None:
    p = sub.add_parser("report", help="write RUN/report.html (curves, sample grids, evaluations, pictures)")
    p.add_argument("run_dir", type=Path, metavar="RUN", help="a run folder written by difflab train")
    p.add_argument("--out", type=Path, help="where to write the page (default RUN/report.html)")
    p.add_argument("--open", action="store_true", help="open the page in the default web browser")
    p.set_defaults(func=guard(run))


def run(args) -> int:
    from difflab.report.html import write_report

    if args.out is not None:
        args.out = check_file(args.out, "--out", (".html", ".htm"))
    elif args.run_dir.is_dir():
        check_folder(args.run_dir, "RUN")
    path = write_report(args.run_dir, out=args.out, open_browser=args.open)
    print(f"report: {path}")
    return 0

"""`difflab studio RUN`: a local web app to play with a trained run (the optional `studio` extra).

Gradio is imported only here, when the command runs; `difflab.studio` does the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path

from difflab.cli.options import number
from difflab.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("studio", help="a local web app on a run: generate, edit a drawing, illusions, explain, runs")
    p.add_argument("run", type=Path, help="run folder (loaded once and kept)")
    p.add_argument("--port", type=number(int), help="port to listen on (default: a free one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (127.0.0.1); another one serves the page to the network, with a warning")
    p.add_argument("--runs", type=Path, metavar="DIR", help="folder the Runs tab scans (the run's parent folder)")
    p.add_argument("--out", type=Path, metavar="DIR", help="where generated files go (a new temp folder)")
    p.add_argument("--threads", type=number(int), metavar="N",
                   help="torch CPU threads (torch's default); 1 stays fast beside a busy process (benchmarks/studio.py)")
    p.set_defaults(func=run)


def run(args) -> int:
    from difflab.run import RunFolder
    from difflab.studio.server import block, host_warning, serve

    RunFolder(args.run).require_run()  # a wrong path fails before Gradio is imported
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    warning = host_warning(args.host)
    if warning:
        print(warning, file=sys.stderr)
    served = serve(args.run, host=args.host, port=args.port, runs_root=args.runs, out=args.out)
    print(f"difflab studio: serving {args.run} at {served.url} (Ctrl-C stops it)", flush=True)
    block(served)
    return 0

"""`difflab export RUN --diffusers DIR`: a run as a folder that `diffusers` loads."""

from __future__ import annotations

from pathlib import Path

from difflab.errors import UserError
from difflab.run.outputs import check_folder, guard


def register(sub) -> None:
    p = sub.add_parser("export", help="write a run as a diffusers folder (unet + scheduler config)")
    p.add_argument("run", type=Path)
    p.add_argument("--diffusers", type=Path, metavar="DIR", required=True, help="output folder")
    p.add_argument("--weights", choices=("ema", "model"), default="ema", help="which weights (ema)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty DIR")
    p.set_defaults(func=guard(run))


def run(args) -> int:
    from difflab.interop.export import export_diffusers
    from difflab.run import Run

    try:
        import diffusers  # noqa: F401
    except ImportError:
        raise UserError("export needs diffusers; fix: pip install 'difflab[interop]'") from None
    check_folder(args.diffusers, "--diffusers")
    out = export_diffusers(Run.load(args.run, weights=args.weights), args.diffusers, overwrite=args.overwrite)
    print(f"wrote {out}; load it with: import difflab.interop.diffusers_model, then "
          f"diffusers.DiffusionPipeline.from_pretrained({str(out)!r})")
    return 0

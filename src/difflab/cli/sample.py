"""`difflab sample`: generate images from a run (or a diffusers UNet folder) as a PNG grid, an .npz, an image folder.

The outputs themselves (grid preview, uint8 buffer, image folder) are `difflab.sampling.outputs`."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from difflab.cli.options import add_sampler_options, int_list, number, sampler_settings
from difflab.errors import UserError
from difflab.run.outputs import check_file, guard
from difflab.signals import Stopping


def register(sub) -> None:
    p = sub.add_parser("sample", help="generate images from a run")
    p.add_argument("run", type=Path, nargs="?", help="run folder (or give --pipeline)")
    p.add_argument("--pipeline", type=Path, metavar="DIR", help="a local diffusers UNet + scheduler folder instead of a run")
    p.add_argument("--label", type=int_list, help="class id(s), e.g. 7 or 3,5 (default: every class in turn)")
    p.add_argument("--prompt", action="append", metavar="TEXT",
                   help="text runs: what to draw, e.g. \"a handwritten seven\" (repeat for several; images cycle)")
    p.add_argument("--n", type=number(int), default=None, help="number of images (default 100, or 16 with --label/--prompt)")
    add_sampler_options(p, redraws=True)
    p.add_argument("--out", type=Path, help="PNG grid (default samples.png; none when --out-dir or --save-npz keeps the images)")
    p.add_argument("--save-npz", type=Path, metavar="FILE", help="also save images (uint8 NHWC) and labels (held as uint8 while sampling)")
    p.add_argument("--out-dir", type=Path, metavar="DIR",
                   help="also write DIR/<class>/<i>.png + metadata.jsonl chunk by chunk (datasets ImageFolder, torch-fidelity)")
    p.add_argument("--chunk-size", type=number(int), default=500,
                   help="images generated (and written) at a time; bounds memory (default 500)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=guard(run))


def run(args) -> int:
    from difflab.interop.imagefolder import check_new_folder
    from difflab.interop.pipeline import load_run_or_pipeline
    from difflab.sampling.outputs import consume, sample_labels, sample_prompts

    if args.out is None and not (args.out_dir or args.save_npz):
        args.out = Path("samples.png")  # the images must land somewhere; beside --out-dir a stray grid would not be asked for
    if args.out is not None:
        args.out = check_file(args.out, "--out", (".png",))  # every output checked before minutes of sampling
    if args.save_npz:
        args.save_npz = check_file(args.save_npz, "--save-npz", (".npz",))
    if args.out_dir:
        check_new_folder(args.out_dir)
    if args.chunk_size < 1:
        raise UserError(f"--chunk-size must be at least 1, got {args.chunk_size}")
    sink = None
    with Stopping(lambda: sink.stop() if sink is not None else "before sampling began; nothing written") as stop:
        loaded = load_run_or_pipeline(args.run, args.pipeline, device=args.device)
        settings, prompts = sampler_settings(args), None
        if args.prompt:
            labels, nrow = None, None
            prompts = sample_prompts(args.prompt, args.label, args.n, loaded)
            n = len(prompts)
        else:
            labels, nrow = sample_labels(args.label, args.n, loaded.num_classes)
            n = len(labels) if labels is not None else (args.n or 100)
        from difflab.sampling.filter import Redraws

        tally = Redraws()
        chunks = loaded.sample_chunks(labels, prompts=prompts, n=n, seed=args.seed, chunk_size=args.chunk_size,
                                      tally=tally, **settings)  # checks first
        sink = _outputs(args, loaded, labels, n, nrow, settings, prompts)
        try:  # Ctrl-C or SIGTERM: `Stopping` keeps what was generated (`sink.stop`) and says so in one line
            consume(chunks, sink, show=not args.no_progress and n > args.chunk_size, hold=stop.hold)
        except OSError as err:  # disk full or folder gone: what is on disk stays valid
            raise UserError(f"cannot write ({err.strerror or err}); {sink.kept()}; fix: free space, then sample "
                            "again into a new --out-dir") from None
        with stop.hold():
            sink.finish()
    if tally.line():
        print(tally.line(), file=sys.stderr)
    _say_what_was_trained(loaded)  # after the work: an error before it stays one line
    return 0


def _say_what_was_trained(loaded) -> None:
    """"run runs/x: 2,000 steps, 128,000 images seen (25.6 epochs), 4.8 min wall", and the warning of a run
    trained too briefly (stderr); nothing for a diffusers pipeline or a run without a snapshot."""
    from difflab.training.adequacy import describe

    folder = getattr(loaded, "folder", None)
    facts, warning = describe(folder) if folder is not None else (None, None)
    if facts is not None:
        print(f"run {folder.path}: {facts.line()}")
    if warning:
        print(warning, file=sys.stderr)


def _outputs(args, loaded, labels, n: int, nrow: int | None, settings: dict, prompts):
    from difflab.sampling.outputs import Outputs

    info = {"seed": args.seed, **dataclasses.asdict(loaded.sampler(seed=args.seed, **settings))} if args.out_dir else None
    try:
        return Outputs(loaded, labels=labels, n=n, nrow=nrow, grid=args.out, npz=args.save_npz, folder=args.out_dir,
                       info=info, prompts=prompts)
    except OSError as err:
        raise UserError(f"cannot write to {args.out_dir} ({err.strerror or err}); fix: give a writable --out-dir") from None

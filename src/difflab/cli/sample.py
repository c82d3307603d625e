"""`difflab sample`: generate images from a run (or a diffusers UNet folder) as a PNG grid, an .npz, an image folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from difflab.cli.options import add_sampler_options, int_list, number, sampler_settings
from difflab.errors import UserError

GRID_MAX = 100  # the PNG grid is a preview: 10 rows of 10; every image goes to --out-dir / --save-npz


def register(sub) -> None:
    p = sub.add_parser("sample", help="generate images from a run")
    p.add_argument("run", type=Path, nargs="?", help="run folder (or give --pipeline)")
    p.add_argument("--pipeline", type=Path, metavar="DIR", help="a local diffusers UNet + scheduler folder instead of a run")
    p.add_argument("--label", type=int_list, help="class id(s), e.g. 7 or 3,5 (default: every class in turn)")
    p.add_argument("--prompt", action="append", metavar="TEXT",
                   help="text runs: what to draw, e.g. \"a handwritten seven\" (repeat for several; images cycle)")
    p.add_argument("--n", type=number(int), default=None, help="number of images (default 100, or 16 with --label/--prompt)")
    add_sampler_options(p)
    p.add_argument("--out", type=Path, default=Path("samples.png"), help="PNG grid (default samples.png)")
    p.add_argument("--save-npz", type=Path, metavar="FILE", help="also save images (uint8 NHWC) and labels (held as uint8 while sampling)")
    p.add_argument("--out-dir", type=Path, metavar="DIR",
                   help="also write DIR/<class>/<i>.png + metadata.jsonl chunk by chunk (datasets ImageFolder, torch-fidelity)")
    p.add_argument("--chunk-size", type=number(int), default=500,
                   help="images generated (and written) at a time; bounds memory (default 500)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=run)


def run(args) -> int:
    from difflab.interop.pipeline import load_run_or_pipeline

    if args.out_dir and (args.out_dir / "metadata.jsonl").exists():
        raise UserError(f"{args.out_dir} already holds generated images; fix: give a new --out-dir")
    if args.chunk_size < 1:
        raise UserError(f"--chunk-size must be at least 1, got {args.chunk_size}")
    loaded = load_run_or_pipeline(args.run, args.pipeline, device=args.device)
    settings, prompts = sampler_settings(args), None
    if args.prompt:
        labels, nrow = None, None
        prompts = sample_prompts(args.prompt, args.label, args.n, loaded)
        n = len(prompts)
    else:
        labels, nrow = sample_labels(args.label, args.n, loaded.num_classes)
        n = len(labels) if labels is not None else (args.n or 100)
    chunks = loaded.sample_chunks(labels, prompts=prompts, n=n, seed=args.seed, chunk_size=args.chunk_size,
                                  **settings)  # checks first
    try:
        sink = Outputs(args, loaded, labels, n, nrow, settings, prompts)
    except OSError as err:
        raise UserError(f"cannot write to {args.out_dir} ({err.strerror or err}); fix: give a writable --out-dir") from None
    try:
        consume(chunks, sink, show=not args.no_progress and n > args.chunk_size)
    except KeyboardInterrupt:
        sink.finish(interrupted=True)
        raise
    except OSError as err:  # disk full or folder gone: what is on disk stays valid
        raise UserError(f"cannot write ({err.strerror or err}); {sink.kept()}; fix: free space, then sample "
                        "again into a new --out-dir") from None
    sink.finish()
    return 0


def consume(chunks, sink: "Outputs", *, show: bool) -> None:
    """Hand each chunk to the outputs as it is produced; a progress bar (stderr) when there are several."""
    import sys

    from tqdm.auto import tqdm

    with tqdm(total=sink.n, unit="img", disable=not show, file=sys.stderr, dynamic_ncols=True, desc="sampling") as bar:
        for chunk_labels, images in chunks:
            sink.add(chunk_labels, images)
            bar.update(len(images))


class Outputs:
    """Where generated chunks go: a grid of at most `GRID_MAX` images, the uint8 .npz buffer, the image folder.

    Memory stays bounded: the grid keeps only its own images, the .npz buffer is uint8 (N·H·W·C bytes,
    7.8 MB for 10,000 MNIST digits), and the folder is written chunk by chunk."""

    def __init__(self, args, loaded, labels, n: int, nrow: int | None, settings: dict, prompts=None) -> None:
        import numpy as np

        self.args, self.labels, self.prompts, self.n, self.done = args, labels, prompts, n, 0
        self.keep, self.nrow, self.what = grid_indices(labels, n, nrow)
        self.grid_parts: list = []
        self.pixels = None
        if args.save_npz:
            c, size = loaded.model.config["in_channels"], loaded.model.config["image_size"]
            self.pixels = np.empty((n, size, size, c), dtype=np.uint8)  # (N, H, W, C)
        self.folder = None
        if args.out_dir:
            from difflab.interop.imagefolder import ImageFolderWriter

            info = {"seed": args.seed, **dataclasses.asdict(loaded.settings(**settings))}
            self.folder = ImageFolderWriter(args.out_dir, loaded.class_names, info=info)

    def add(self, _cond, images) -> None:
        """One chunk `(b, C, H, W)`, in order (its class ids / prompts are sliced from ours, not from `_cond`)."""
        from difflab.report.images import to_uint8

        start, b = self.done, len(images)
        chunk_labels = self.labels[start : start + b] if self.labels is not None else None
        texts = self.prompts[start : start + b] if self.prompts is not None else None
        picked = [i - start for i in self.keep if start <= i < start + b]
        if picked:
            self.grid_parts.append(images[picked])
        if self.pixels is not None:
            self.pixels[start : start + b] = to_uint8(images)
        if self.folder is not None:
            self.folder.write(images, chunk_labels, texts)
        self.done += b

    def kept(self) -> str:
        """What survives an interrupt or a write error, in words."""
        if self.folder is None:
            return f"{self.done} of {self.n} images were generated"
        return f"{self.args.out_dir} holds {self.folder.written} of {self.n} images (listed in its metadata.jsonl)"

    def finish(self, *, interrupted: bool = False) -> None:
        """Write the grid and .npz of what was generated (all of it, or what came before an interrupt)."""
        import sys

        import numpy as np
        import torch

        from difflab.report.images import save_grid

        if self.folder is not None:
            self.folder.close()
        if interrupted:
            print(f"difflab: interrupted; {self.kept()}", file=sys.stderr)
        if self.done == 0:
            return
        shown = torch.cat(self.grid_parts)
        save_grid(shown, self.args.out, nrow=self.nrow)
        if len(shown) == self.done == self.n:
            print(f"wrote {self.n} images to {self.args.out}")
        else:
            print(f"wrote a grid of {len(shown)} of the {self.done} images ({self.what}) to {self.args.out}")
        if self.pixels is not None:
            labels = self.labels[: self.done].numpy() if self.labels is not None else np.full(self.done, -1)  # -1: unconditional
            extra = {"prompts": np.array(self.prompts[: self.done])} if self.prompts is not None else {}
            np.savez_compressed(self.args.save_npz, images=self.pixels[: self.done], labels=labels, **extra)
            print(f"wrote {self.done} images and labels to {self.args.save_npz}")
        if self.folder is not None:
            print(f"wrote {self.folder.written} images to {self.args.out_dir}/<class>/ with metadata.jsonl")


def grid_indices(labels, n: int, nrow: int | None) -> tuple[list[int], int, str]:
    """Which images the PNG grid shows, its width, and how they were picked (printed).

    All of them up to `GRID_MAX`; beyond, the first images of each class (rows of one class when
    possible), or the first `GRID_MAX` unconditional ones."""
    if n <= GRID_MAX:
        return list(range(n)), nrow or max(1, round(n**0.5)), "all"
    if labels is None:
        return list(range(GRID_MAX)), 10, f"the first {GRID_MAX}"
    classes = labels.unique().tolist()
    per_class = max(1, GRID_MAX // len(classes))
    per_class = per_class if per_class <= 10 else per_class - per_class % 10  # whole rows of 10
    keep = []
    for c in classes[:GRID_MAX]:
        keep += (labels == c).nonzero().flatten()[:per_class].tolist()
    return sorted(keep), min(per_class, 10), f"the first {per_class} of each class"


def sample_prompts(prompts: list[str], label, n: int | None, loaded) -> list[str]:
    """`n` prompts cycling through those given, grouped so the grid shows each prompt together."""
    if label:
        raise UserError("give --label or --prompt, not both")
    if not getattr(loaded, "is_text", False):
        raise UserError("this model is not text-conditional; fix: --label instead of --prompt, or train with "
                        "--conditioning text")
    if n is not None and n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    n = n or 16
    return sorted((prompts[i % len(prompts)] for i in range(n)), key=prompts.index)


def sample_labels(label: tuple[int, ...] | None, n: int | None, num_classes: int):
    """Labels to sample and the grid width (one row per class when every class is drawn)."""
    import torch

    if n is not None and n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    if not num_classes:
        if label:
            raise UserError("this run is unconditional; fix: drop --label")
        return None, None
    if label:
        n = n or 16
        return torch.tensor(label).repeat(-(-n // len(label)))[:n].sort().values, None
    n = n or 100
    per_class = -(-n // num_classes)
    labels = torch.arange(num_classes).repeat_interleave(per_class)[:n]
    return labels, per_class if n % num_classes == 0 else None

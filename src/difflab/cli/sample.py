"""`difflab sample`: generate images from a run as a PNG grid (and an .npz for other tools)."""

from __future__ import annotations

from pathlib import Path

from difflab.cli.options import add_sampler_options, int_list, number, sampler_settings
from difflab.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("sample", help="generate images from a run")
    p.add_argument("run", type=Path)
    p.add_argument("--label", type=int_list, help="class id(s), e.g. 7 or 3,5 (default: every class in turn)")
    p.add_argument("--n", type=number(int), default=None, help="number of images (default 100, or 16 with --label)")
    add_sampler_options(p)
    p.add_argument("--out", type=Path, default=Path("samples.png"), help="PNG grid (default samples.png)")
    p.add_argument("--save-npz", type=Path, metavar="FILE", help="also save images (uint8 NHWC) and labels")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from difflab.report.images import save_grid, to_uint8
    from difflab.run import Run

    loaded = Run.load(args.run, device=args.device)
    labels, nrow = sample_labels(args.label, args.n, loaded.num_classes)
    n = len(labels) if labels is not None else (args.n or 100)
    images = loaded.sample(labels, n=n, seed=args.seed, **sampler_settings(args))
    save_grid(images, args.out, nrow=nrow or max(1, round(n**0.5)))
    print(f"wrote {n} images to {args.out}")
    if args.save_npz:
        label_array = labels.numpy() if labels is not None else np.full(n, -1)  # -1: unconditional
        np.savez_compressed(args.save_npz, images=to_uint8(images), labels=label_array)
        print(f"wrote images and labels to {args.save_npz}")
    return 0


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

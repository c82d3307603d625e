"""`difflab sample`: generate images from a run (or a diffusers UNet folder) as a PNG grid, an .npz, an image folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from difflab.cli.options import add_sampler_options, int_list, number, sampler_settings
from difflab.errors import UserError


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
    p.add_argument("--save-npz", type=Path, metavar="FILE", help="also save images (uint8 NHWC) and labels")
    p.add_argument("--out-dir", type=Path, metavar="DIR",
                   help="also write DIR/<class>/<i>.png + metadata.jsonl (datasets ImageFolder, torch-fidelity)")
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from difflab.interop.pipeline import load_run_or_pipeline
    from difflab.report.images import save_grid, to_uint8

    if args.out_dir and (args.out_dir / "metadata.jsonl").exists():
        raise UserError(f"{args.out_dir} already holds generated images; fix: give a new --out-dir")
    loaded = load_run_or_pipeline(args.run, args.pipeline, device=args.device)
    settings = sampler_settings(args)
    if args.prompt:
        labels, nrow = None, None
        prompts = sample_prompts(args.prompt, args.label, args.n, loaded)
        n = len(prompts)
        images = loaded.sample(prompts=prompts, seed=args.seed, **settings)
    else:
        labels, nrow = sample_labels(args.label, args.n, loaded.num_classes)
        n = len(labels) if labels is not None else (args.n or 100)
        images = loaded.sample(labels, n=n, seed=args.seed, **settings)
    save_grid(images, args.out, nrow=nrow or max(1, round(n**0.5)))
    print(f"wrote {n} images to {args.out}")
    if args.save_npz:
        label_array = labels.numpy() if labels is not None else np.full(n, -1)  # -1: unconditional
        extra = {"prompts": np.array(prompts)} if args.prompt else {}
        np.savez_compressed(args.save_npz, images=to_uint8(images), labels=label_array, **extra)
        print(f"wrote images and labels to {args.save_npz}")
    if args.out_dir:
        from difflab.interop.imagefolder import write_image_folder

        info = {"seed": args.seed, **dataclasses.asdict(loaded.settings(**settings))}
        write_image_folder(images, labels, loaded.class_names, args.out_dir, info=info)
        print(f"wrote {n} images to {args.out_dir}/<class>/ with metadata.jsonl")
    return 0


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

"""`difflab evaluate`: judge accuracy and confidence of generated images, per class."""

from __future__ import annotations

import json
from pathlib import Path

from difflab.cli.options import add_sampler_options, number, sampler_settings
from difflab.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="judge accuracy and confidence of generated images per class")
    p.add_argument("run", type=Path)
    p.add_argument("--n", type=number(int), default=1000, help="images in all, split evenly over classes (1000)")
    add_sampler_options(p)
    p.add_argument("--json", type=Path, help="also write the result here")
    p.set_defaults(func=run)


def run(args) -> int:
    from difflab.api import evaluate_run
    from difflab.run import Run

    loaded = Run.load(args.run, device=args.device)
    if args.n < max(1, loaded.num_classes):
        raise UserError(f"--n must be at least the number of classes ({loaded.num_classes}), got {args.n}")
    result = evaluate_run(loaded, n_per_class=args.n // max(1, loaded.num_classes), seed=args.seed,
                          **sampler_settings(args))
    print(f"{'class':>12} {'accuracy':>9}")
    for name, acc in result["per_class_accuracy"].items():
        print(f"{name:>12} {100 * acc:8.1f}%")
    print(f"{'all':>12} {100 * result['accuracy']:8.1f}%   mean confidence {100 * result['mean_confidence']:.1f}%"
          f"   (judge on real held-out images: {100 * result['judge_real_accuracy']:.1f}%)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0

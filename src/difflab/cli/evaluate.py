"""`difflab evaluate`: every quality number of a run's samples, or of any generator's images.

    difflab evaluate RUN [--n 2000] [--steps 20] [--guidance 3] [--json out.json]
    difflab evaluate --images samples.npz|DIR --dataset mnist5k [--out eval]
    difflab evaluate RUN --prompts [--per-prompt 100] [--guidance 3] [--clip-weights DIR]   # text runs
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from difflab.cli.options import add_sampler_options, number, sampler_settings
from difflab.errors import UserError


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="judge accuracy, FD/KID/precision/recall, memorisation, IDK judge, embeddings")
    p.add_argument("run", type=Path, nargs="?", help="run folder to sample from (or give --images)")
    p.add_argument("--images", type=Path, help="evaluate these instead: an .npz (difflab sample --save-npz) or a folder")
    p.add_argument("--dataset", help="the dataset the --images imitate (e.g. mnist5k)")
    p.add_argument("--n", type=number(int), default=2000, help="images to sample, split evenly over classes (2000)")
    add_sampler_options(p)
    p.add_argument("--name", help="result name: OUT/<name>.json and OUT/<name>/*.png (from the settings)")
    p.add_argument("--out", type=Path, help="folder for --images results (./eval); a run writes RUN/eval/")
    p.add_argument("--inception-weights", type=Path, metavar="PATH",
                   help="Inception weights file for torch-fidelity FID/KID/IS (or $DIFFLAB_INCEPTION_WEIGHTS)")
    p.add_argument("--no-pictures", action="store_true", help="numbers only: no PNGs, no embeddings")
    p.add_argument("--json", type=Path, help="also write the result here")
    text = p.add_argument_group("text runs")
    text.add_argument("--prompts", action="store_true",
                      help="judge accuracy per prompt: the trained captions vs paraphrases never seen in training")
    text.add_argument("--per-prompt", type=number(int), default=100, help="samples per prompt (100)")
    text.add_argument("--clip-weights", type=Path, metavar="DIR", help="local CLIP weights for a CLIP score (torchmetrics)")
    p.set_defaults(func=run)


def run(args) -> int:
    from difflab.evaluation.suite import EvalConfig

    if (args.run is None) == (args.images is None):
        raise UserError("give a run folder or --images FILE|DIR (not both); see `difflab evaluate --help`")
    if args.prompts or args.clip_weights:
        return _prompts(args)
    config = EvalConfig(seed=0, inception_weights=str(args.inception_weights) if args.inception_weights else None,
                        pictures=not args.no_pictures)
    result = _from_images(args, config) if args.images else _from_run(args, config)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def _from_run(args, config) -> dict:
    from difflab.evaluation.suite import evaluate_run
    from difflab.run import Run

    if args.dataset:
        raise UserError("--dataset goes with --images; a run evaluates against its own dataset")
    loaded = Run.load(args.run, device=args.device)
    return evaluate_run(loaded, n=args.n, seed=args.seed, name=args.name, config=config, **sampler_settings(args))


def _prompts(args) -> int:
    from difflab.evaluation.prompts import evaluate_prompts
    from difflab.run import Run
    from difflab.training.checkpoint import atomic_write_text

    if args.run is None:
        raise UserError("--prompts evaluates a text run's own prompts; fix: give the run folder, not --images")
    loaded = Run.load(args.run, device=args.device)
    result = evaluate_prompts(loaded, per_prompt=args.per_prompt, seed=args.seed, clip_weights=args.clip_weights,
                              **sampler_settings(args))
    print(f"prompts of {args.run}: {result['per_prompt']} samples per prompt, {result['solver']} "
          f"{result['steps']} steps, guidance {result['guidance']:g}")
    for name, r in result["sets"].items():
        clip = f"   CLIP score {r['clip_score']:.2f}" if "clip_score" in r else ""
        print(f"  {name:<8} {r['prompts']:>3} prompts   judge accuracy {100 * r['accuracy']:5.1f}%   "
              f"confidence {100 * r['mean_confidence']:5.1f}%{clip}")
    if "clip_skipped" in result:
        print(f"  note: {result['clip_skipped']}")
    name = args.name or f"prompts-{result['solver']}-{result['steps']}steps-g{result['guidance']:g}-n{args.per_prompt}"
    (args.run / "eval").mkdir(exist_ok=True)
    out = args.run / "eval" / f"{name}.json"
    atomic_write_text(out, json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(f"  wrote {out}")
    return 0


def _from_images(args, config) -> dict:
    from difflab.data import load_dataset
    from difflab.evaluation.inputs import load_images
    from difflab.evaluation.suite import evaluate_images

    if not args.dataset:
        raise UserError("--images needs --dataset NAME (the dataset the images imitate, e.g. mnist5k)")
    class_names = load_dataset(args.dataset, split="test").class_names
    images, labels = load_images(args.images, class_names)
    meta = {"source": str(args.images), "seeds": {"sampling": None, "evaluation": config.seed}, "sampler": None}
    name = args.name or f"images-{args.images.stem}-n{len(images)}"
    return evaluate_images(images, labels, args.dataset, out=args.out or Path("eval"), name=name, config=config,
                           meta=meta)


def print_table(r: dict) -> None:
    """The numbers a person reads first; everything else is in the JSON."""
    d, m = r["distribution"], r["memorisation"]
    width = min(100, shutil.get_terminal_size().columns)
    print(f"{r['name']}: {r['n']} images vs {r['dataset']}  (judge on real held-out images: "
          f"{100 * r['judge_real_accuracy']:.1f}%)")
    if r["labelled"]:
        per = "  ".join(f"{k}:{100 * v:.0f}" for k, v in r["per_class_accuracy"].items())
        print(f"  judge accuracy   {100 * r['accuracy']:6.1f}%   mean confidence {100 * r['mean_confidence']:.1f}%")
        print(f"  per class (%)    {per}"[:width])
    rows = [("FD (judge features)", d["fd"], d["floor_fd"], ".3f"), ("KID x1000", 1e3 * d["kid_mean"], 1e3 * d["floor_kid_mean"], ".3f"),
            ("precision", d["precision"], d["floor_precision"], ".3f"), ("recall", d["recall"], d["floor_recall"], ".3f"),
            ("IS analogue", d["is_mean"], d["floor_is_mean"], ".2f")]
    print(f"  {'metric':<22}{'generated':>10}{'real floor':>12}   (floor: {d['n_floor']} real vs {d['n_reference']} real)")
    for label, value, floor, fmt in rows:
        print(f"  {label:<22}{value:>10{fmt}}{floor:>12{fmt}}")
    print(f"  KID std x1000 {1e3 * d['kid_std']:.3f};  too close to a train image: {100 * m['pixel']['fraction_closer_than_test']:.1f}% "
          f"(pixels), {100 * m['feature']['fraction_closer_than_test']:.1f}% (features)  [~5% = like real test images]")
    if "idk" in r:
        table = r["idk"]["accuracy_at_coverage"]
        covs = list(next(iter(table.values())))
        print(f"  {'accuracy at coverage':<22}" + "".join(f"{float(c) * 100:>7.0f}%" for c in covs))
        for rule, accs in table.items():
            print(f"  {rule:<22}" + "".join(f"{100 * a:>7.1f}%" for a in accs.values()))
    if "inception" in r:
        i = r["inception"]
        print(f"  Inception FID {i['fid']:.2f}  KID {i['kid_mean']:.4f}±{i['kid_std']:.4f}  IS {i['isc_mean']:.2f}")
    else:
        print(f"  note: {r['inception_skipped']}")
    print(f"  wrote {r['written']}" + (f" and pictures in {r['written'][:-5]}/" if r["eval_config"]["pictures"] else ""))

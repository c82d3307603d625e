"""`difflab evaluate`: every quality number of a run's samples, or of any generator's images.

    difflab evaluate RUN [--n 2000] [--steps 20] [--guidance 3] [--json out.json]
    difflab evaluate --images samples.npz|DIR --dataset mnist5k [--out eval]
    difflab evaluate RUN --prompts [--per-prompt 100] [--guidance 3] [--clip-weights DIR]   # text runs
"""

from __future__ import annotations

import shutil
from pathlib import Path

from difflab.cli.options import add_sampler_options, number, sampler_settings
from difflab.errors import UserError
from difflab.run.outputs import check_file, check_folder, guard

DEFAULT_N = 2000
DEFAULT_PER_PROMPT = 100
SAMPLER_FLAGS = ("solver", "steps", "guidance", "guidance_method", "guidance_interval", "guidance_rescale", "autoguidance",
                 "n")  # options that only mean something when images are sampled from a run
SAMPLER_DEFAULTS = {"eta": 0.0, "seed": 0, "device": "cpu", "precision": "auto"}  # theirs, when left alone


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="judge accuracy, FD/KID/precision/recall, memorisation, IDK judge, embeddings")
    p.add_argument("run", type=Path, nargs="?", help="run folder to sample from (or give --images)")
    p.add_argument("--images", type=Path, help="evaluate these instead: an .npz (difflab sample --save-npz) or a folder")
    p.add_argument("--dataset", help="the dataset the --images imitate (e.g. mnist5k)")
    p.add_argument("--n", type=number(int), help=f"images to sample, split evenly over classes ({DEFAULT_N})")
    add_sampler_options(p, redraws=True)
    p.add_argument("--name", help="result name: OUT/<name>.json and OUT/<name>/*.png (from the settings)")
    p.add_argument("--out", type=Path, help="folder for --images results (./eval); a run writes RUN/eval/")
    p.add_argument("--inception-weights", type=Path, metavar="PATH",
                   help="Inception weights file for torch-fidelity FID/KID/IS (or $DIFFLAB_INCEPTION_WEIGHTS)")
    p.add_argument("--no-pictures", action="store_true", help="numbers only: no PNGs, no embeddings")
    p.add_argument("--json", type=Path, help="also write the result here")
    text = p.add_argument_group("text runs")
    text.add_argument("--prompts", action="store_true",
                      help="judge accuracy per prompt: the trained captions vs paraphrases never seen in training "
                           "(per-image captions: vs held-out captions, with caption retrieval R@1/R@5)")
    text.add_argument("--per-prompt", type=number(int), help=f"samples per prompt ({DEFAULT_PER_PROMPT})")
    text.add_argument("--clip-weights", type=Path, metavar="DIR", help="local CLIP weights for a CLIP score (torchmetrics)")
    p.set_defaults(func=guard(run))


def run(args) -> int:
    from difflab.evaluation.suite import EvalConfig
    from difflab.evaluation.summary import suite_lines

    if (args.run is None) == (args.images is None):
        raise UserError("give a run folder or --images FILE|DIR (not both); see `difflab evaluate --help`")
    _check_combinations(args)
    _check_outputs(args)
    if args.prompts or args.clip_weights:
        return _prompts(args)
    config = EvalConfig(seed=0, inception_weights=str(args.inception_weights) if args.inception_weights else None,
                        pictures=not args.no_pictures)
    result = _from_images(args, config) if args.images else _from_run(args, config)
    lines = suite_lines(result, width=min(100, shutil.get_terminal_size().columns))
    lines[-1] += _also_json(args, result)  # the last line says what was written where: one line, all of it
    print("\n".join(lines))
    return 0


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_combinations(args) -> None:
    """Refuse options this kind of evaluation would silently ignore (one line, before any work)."""
    if args.images is not None:
        given = [_flag(k) for k in SAMPLER_FLAGS if getattr(args, k) is not None]
        given += [_flag(k) for k, v in SAMPLER_DEFAULTS.items() if getattr(args, k) != v]
        if given:
            raise UserError(f"{given[0]} sets how a run is sampled, but --images are already made; fix: drop "
                            f"{', '.join(given)}")
    prompts = args.prompts or args.clip_weights
    if args.run is not None and args.out is not None:
        raise UserError(f"--out is where --images results go; a run's results go to {args.run}/eval/; fix: drop --out "
                        "(or --json FILE for a copy elsewhere)")
    if args.per_prompt is not None and not prompts:
        raise UserError("--per-prompt goes with --prompts (a text run's prompts); fix: add --prompts, or --n for images")
    if prompts and (args.n is not None or args.inception_weights is not None):
        flag = "--n" if args.n is not None else "--inception-weights"
        raise UserError(f"{flag} has no effect with --prompts (per-prompt judge accuracy); fix: drop {flag}")


def _check_outputs(args) -> None:
    """Where results go, checked before minutes of sampling and measuring."""
    if args.json is not None:
        args.json = check_file(args.json, "--json", (".json",))
    if args.images is not None:
        from difflab.evaluation.suite import IMAGES_OUT

        check_folder(args.out or IMAGES_OUT, "--out")
    elif args.run.is_dir():
        check_folder(args.run / "eval", "RUN")


def _also_json(args, result: dict) -> str:
    """Write `--json` too; the words to add to the "wrote" line."""
    from difflab.run import files

    if not args.json:
        return ""
    files.write_json(args.json, result)
    return f", and a copy in {args.json}"


def _from_run(args, config) -> dict:
    from difflab.evaluation.suite import evaluate_run
    from difflab.run import Run

    if args.dataset:
        raise UserError("--dataset goes with --images; a run evaluates against its own dataset")
    loaded = Run.load(args.run, device=args.device)
    return evaluate_run(loaded, n=DEFAULT_N if args.n is None else args.n, seed=args.seed, name=args.name, config=config, **sampler_settings(args))


def _prompts(args) -> int:
    from difflab.evaluation.prompts import evaluate_prompts, write_prompts_eval
    from difflab.evaluation.summary import prompt_lines
    from difflab.run import Run

    if args.run is None:
        raise UserError("--prompts evaluates a text run's own prompts; fix: give the run folder, not --images")
    loaded = Run.load(args.run, device=args.device)
    result = evaluate_prompts(loaded, per_prompt=DEFAULT_PER_PROMPT if args.per_prompt is None else args.per_prompt, seed=args.seed, clip_weights=args.clip_weights,
                              **sampler_settings(args))
    print("\n".join(prompt_lines(result, str(args.run))))
    out = write_prompts_eval(loaded, result, args.name)
    print(f"  wrote {out}{_also_json(args, result)}")
    return 0


def _from_images(args, config) -> dict:
    from difflab.data import load_dataset
    from difflab.evaluation.inputs import load_images
    from difflab.evaluation.suite import IMAGES_OUT, evaluate_images

    if not args.dataset:
        raise UserError("--images needs --dataset NAME (the dataset the images imitate, e.g. mnist5k)")
    class_names = load_dataset(args.dataset, split="train").class_names  # a tiny set may hold out nothing
    images, labels = load_images(args.images, class_names)
    meta = {"source": str(args.images), "seeds": {"sampling": None, "evaluation": config.seed}, "sampler": None}
    name = args.name or f"images-{args.images.stem}-n{len(images)}"
    return evaluate_images(images, labels, args.dataset, out=args.out or IMAGES_OUT, name=name, config=config,
                           meta=meta)

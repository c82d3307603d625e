"""Text prompts bar: judge accuracy of trained captions vs unseen paraphrases, against a class-conditional run.

    difflab train --conditioning text --steps 1150 --out runs/text --no-eval    # same budget as ...
    difflab train --steps 1150 --out runs/class --no-eval                      # ... the class-conditional peer
    python benchmarks/text_prompts.py --text-run runs/text --class-run runs/class [--per-prompt 100] [--per-class 100] \
        [--guidance 1,3,5]

For each guidance w: the text run's judge accuracy over its trained captions (5 per class) and over 10
paraphrases per class never used in training, `per_prompt` samples each; the class run's accuracy
with `per_prompt` samples per class. Same sampler (the runs' default solver and steps), same seed.
"""

from __future__ import annotations

import argparse
import json
import time

from difflab.api import judge_run
from difflab.evaluation.prompts import evaluate_prompts
from difflab.run import Run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--text-run", required=True)
    parser.add_argument("--class-run", required=True)
    parser.add_argument("--per-prompt", type=int, default=100)
    parser.add_argument("--per-class", type=int, help="class-run samples per class (default: --per-prompt)")
    parser.add_argument("--guidance", default="1,3,5")
    parser.add_argument("--json", help="write every per-prompt figure here")
    args = parser.parse_args()
    text, klass = Run.load(args.text_run), Run.load(args.class_run)
    print(f"text run {args.text_run} ({_params(text)} params) vs class run {args.class_run} ({_params(klass)} params); "
          f"{args.per_prompt} samples per prompt, {args.per_class or args.per_prompt} per class, "
          f"{text.config.solver} {text.config.sample_steps} steps")
    print(f"{'w':>4} {'trained captions':>17} {'unseen paraphrases':>19} {'class-conditional':>18} {'seconds':>8}")
    rows = []
    for w in (float(v) for v in args.guidance.split(",")):
        start = time.monotonic()
        prompts = evaluate_prompts(text, per_prompt=args.per_prompt, guidance=w)
        classes = judge_run(klass, n_per_class=args.per_class or args.per_prompt, guidance=w, name=f"bench-g{w:g}")
        sets = prompts["sets"]
        print(f"{w:4g} {100 * sets['trained']['accuracy']:16.1f}% {100 * sets['unseen']['accuracy']:18.1f}% "
              f"{100 * classes['accuracy']:17.1f}% {time.monotonic() - start:8.0f}", flush=True)
        rows.append({"guidance": w, "text": prompts, "class_accuracy": classes["accuracy"]})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    worst = min((r for s in ("trained", "unseen") for r in rows[-1]["text"]["sets"][s]["per_prompt_accuracy"]),
                key=lambda r: r["accuracy"])
    print(f"hardest prompt at w={rows[-1]['guidance']:g}: {worst['prompt']!r} ({100 * worst['accuracy']:.0f}%)")


def _params(run: Run) -> str:
    return f"{sum(p.numel() for p in run.model.parameters()) / 1e6:.2f} M"


if __name__ == "__main__":
    main()

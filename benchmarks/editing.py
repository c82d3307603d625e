"""Editing quality on a trained run, judged by difflab's judge classifier (mnist5k).

    python benchmarks/editing.py --run /work/spine-run --n 100

- anagram 6/9 through rot180: fraction of samples judged 6 upright AND 9 rotated (and each alone);
- hybrid far 1 / near 7: far reading = judge on the image shrunk 2× (area, enlarged back; the judge reads
  no plain digit at 2.8×),
  near reading = judge at full size, for a few low-pass sigmas;
- SDEdit 1 → 7: `n` test-set 1s edited with label 7 at each level; fraction judged 7 (and still 1).
Plain class-conditional samples through the same path are the reference row.
"""

from __future__ import annotations

import argparse
import time

import torch

from difflab.data import load_dataset
from difflab.edit import Editor, get_view
from difflab.edit.filters import shrink
from difflab.evaluation import load_judge
from difflab.run import Run


def judged(judge, images: torch.Tensor) -> torch.Tensor:
    return judge.probabilities(images).argmax(dim=1)  # (N,)


def frac(mask: torch.Tensor) -> str:
    return f"{100 * mask.float().mean().item():.0f}%"


def anagram_rows(editor, judge, n, seed):
    rot = get_view("rot180")
    plain6 = editor.plain(6, n=n, seed=seed)
    yield "plain 6 (reference)", f"upright 6: {frac(judged(judge, plain6) == 6)}", f"rot180 judged 9: {frac(judged(judge, rot.apply(plain6)) == 9)}"
    images = editor.anagram((6, 9), "rot180", n=n, seed=seed)
    up, down = judged(judge, images) == 6, judged(judge, rot.apply(images)) == 9
    yield "anagram 6/9 rot180", f"6 upright AND 9 rotated: {frac(up & down)}", f"6 upright {frac(up)}, 9 rotated {frac(down)}"


def hybrid_rows(editor, judge, n, seed, sigmas):
    for label in (1, 7):
        plain = editor.plain(label, n=n, seed=seed)
        yield f"plain {label} (reference)", f"2× smaller judged {label}: {frac(judged(judge, shrink(plain, 2)) == label)}", f"full size judged {label}: {frac(judged(judge, plain) == label)}"
    for sigma in sigmas:
        images = editor.hybrid(1, 7, sigma, n=n, seed=seed)
        far, near = judged(judge, shrink(images, 2)) == 1, judged(judge, images) == 7
        yield f"hybrid far 1 / near 7, σ={sigma:g}", f"far (2× smaller) judged 1: {frac(far)}", f"near (full size) judged 7: {frac(near)}; both {frac(far & near)}"


def sdedit_rows(editor, judge, n, seed, levels):
    data = load_dataset("mnist5k", split="test")
    ones = data.images[data.labels == 1][:n].float()
    for level in levels:
        out = editor.sdedit(ones, [level], label=7, seed=seed)[:, 0]
        j = judged(judge, out)
        t0 = editor.num_timesteps if level == editor.sampler.steps else None
        yield f"SDEdit 1→7, level {level}/{editor.sampler.steps}", f"judged 7: {frac(j == 7)}", f"still 1: {frac(j == 1)}" + ("" if t0 is None else " (pure noise start)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="/work/spine-run")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    p.add_argument("--only", choices=("anagram", "hybrid", "sdedit"), default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    run, judge = Run.load(args.run), load_judge("mnist5k", verbose=False)
    editor = Editor(run)  # 20 strided steps, the run's solver (DPM-Solver++ 2M) and guidance
    print(f"run {args.run}: solver {editor.settings.solver}, {editor.sampler.steps} steps, guidance {editor.settings.guidance:g}, n={args.n}, seed={args.seed}")
    print("| experiment | main figure | detail |\n|---|---|---|")
    parts = {"anagram": lambda: anagram_rows(editor, judge, args.n, args.seed),
             "hybrid": lambda: hybrid_rows(editor, judge, args.n, args.seed, (1.0, 1.5, 2.0, 3.0)),
             "sdedit": lambda: sdedit_rows(editor, judge, args.n, args.seed, (1, 3, 5, 7, 10, 13, 16, 20))}
    for name, rows in parts.items():
        if args.only in (None, name):
            started = time.monotonic()
            for row in rows():
                print("| " + " | ".join(row) + " |", flush=True)
            print(f"<!-- {name}: {time.monotonic() - started:.0f} s -->", flush=True)


if __name__ == "__main__":
    main()

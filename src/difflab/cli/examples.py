"""Worked examples of every sub-command, shown at the end of its `--help`; one table, so they are kept true.

tests/cli/test_help_examples.py parses every line with `build_parser()`, so a renamed flag fails a test
instead of a reader. An example under "edit sdedit" also shows in `difflab edit --help`.
"""

from __future__ import annotations

# The typical order of a first session (the epilog of `difflab --help`).
WORKFLOW = (
    ("difflab train --out runs/mnist", "train on the embedded digits (mnist5k) for the default budget"),
    ("difflab sample runs/mnist --label 7 --out sevens.png", "16 sevens as a PNG grid"),
    ("difflab evaluate runs/mnist --n 500", "judge accuracy, FD/KID, precision/recall, memorisation"),
    ("difflab report runs/mnist --open", "one HTML page of curves, grids and evaluations"),
    ("difflab studio runs/mnist", "sliders, a drawing canvas and the explanations in a browser"),
)

# sub-command (or "command inner") -> (command line, what it does)
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "train": (
        ("difflab train --steps 2000 --out runs/mnist", "a short run on the embedded digits"),
        ("difflab train --dataset fashion-mnist --minutes 30 --out runs/fashion", "another dataset, a time budget"),
        ("difflab train --resume runs/mnist --steps 4000", "continue a run to 4,000 steps"),
        ("difflab train --config recipe.toml --lr 1e-3 -q", "a TOML recipe with one key overridden, no bar"),
    ),
    "sample": (
        ("difflab sample runs/mnist", "100 images, every class in turn, to samples.png"),
        ("difflab sample runs/mnist --label 3,5 --n 32 --guidance 2 --out threes-fives.png", "two classes, guided"),
        ("difflab sample runs/mnist --n 10000 --save-npz s.npz --out-dir samples/", "many images as .npz and PNGs"),
    ),
    "distill": (
        ("difflab distill runs/mnist --steps 4", "a 4-step student in runs/mnist-distilled-4"),
        ("difflab distill runs/mnist --steps 1 --minutes-per-round 3 --out runs/one-step", "down to one step"),
    ),
    "edit": (
        ("difflab edit sdedit runs/mnist --image drawing.png --label 7", "a rough drawing turned into a seven"),
        ("difflab edit inpaint runs/mnist --from-class 3 --box 0,0,28,14", "regenerate the top half of a three"),
        ("difflab edit anagram runs/mnist --labels 6,9", "an image that reads 6 upright and 9 upside down"),
        ("difflab edit hybrid runs/mnist --far 1 --near 7", "a 1 from afar, a 7 up close"),
    ),
    "evaluate": (
        ("difflab evaluate runs/mnist", "2,000 samples against the real digits: every quality number"),
        ("difflab evaluate runs/mnist --n 500 --steps 20 --json eval.json", "quicker, and a copy of the JSON"),
        ("difflab evaluate --images samples.npz --dataset mnist5k --out eval", "images from any generator"),
    ),
    "report": (
        ("difflab report runs/mnist", "write runs/mnist/report.html"),
        ("difflab report runs/mnist --out page.html --open", "elsewhere, and open it in a browser"),
    ),
    "explain": (
        ("difflab explain pca runs/mnist --n 200", "principal components of x_t along sampling"),
        ("difflab explain attribute runs/mnist --method saliency --label 7", "which pixels drive the noise estimate"),
        ("difflab explain kernels runs/mnist", "first-layer filters and activation maps"),
        ("difflab explain emergence runs/mnist --n 100", "at which step the digit becomes recognisable"),
    ),
    "sweep": (
        ("difflab sweep sweep.toml", "train and judge each configuration; rerun to resume"),
        ("difflab sweep sweep.toml --out sweeps/lr --parallel 2", "two runs at once, in sweeps/lr"),
    ),
    "export": (
        ("difflab export runs/mnist --diffusers exported/", "a diffusers UNet + scheduler folder"),
        ("difflab export runs/mnist --diffusers exported/ --weights model --overwrite", "raw (non-EMA) weights"),
    ),
    "studio": (
        ("difflab studio runs/mnist", "a local web app on the run (prints its address)"),
        ("difflab studio runs/mnist --port 8080 --runs runs/", "a fixed port; the Runs tab lists runs/"),
    ),
}


def _lines(pairs) -> str:
    """Comment above command, as in a man page: long commands stay on one line, copyable."""
    return "\n".join(f"  # {what}\n  {cmd}" for cmd, what in pairs)


def epilog(command: str) -> str | None:
    """The "examples:" block of `difflab COMMAND --help` (a nested `COMMAND INNER` shows its own lines)."""
    top, _, inner = command.partition(" ")
    pairs = [(c, w) for c, w in EXAMPLES.get(top, ()) if not inner or c.split()[2:3] == [inner]]
    return "examples:\n" + _lines(pairs) if pairs else None


def top_epilog() -> str:
    return ("a first session, in order:\n" + _lines(WORKFLOW)
            + "\n\n`difflab COMMAND --help` shows each command's options and examples; -q silences progress.")


def all_examples() -> list[str]:
    """Every example command line (for the test that parses them)."""
    return [cmd for cmd, _ in WORKFLOW] + [cmd for pairs in EXAMPLES.values() for cmd, _ in pairs]

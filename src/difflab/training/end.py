"""The work every finished run gets (loss plot, final grid, trajectory, judge figure, guidance sweep, report),
scaled to its data; a run trained on per-image captions (emoji, a folder with metadata.jsonl) also gets its
prompts evaluated: judge accuracy and caption retrieval on trained and held-out captions.

Why a plan: a dataset of 3 images cannot train a judge, and one of 10,000 classes would make a grid of
100,000 samples. So the amounts are bounded here (grids show at most `GRID_CLASSES` classes, the judge
samples at most `JUDGE_IMAGES` images, the sweep runs for at most `SWEEP_CLASSES` classes) and what cannot be
done is skipped with its reason: printed once, and kept in `RUN/eval/end_of_run.json`, which the report shows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from difflab.errors import UserError
from difflab.training.sample_grids import GRID_CLASSES, shown_classes

JUDGE_MIN_TRAIN = 128  # the judge's batch (evaluation/judge.py: train_judge): fewer train images give it no step
JUDGE_IMAGES = 1000  # the end-of-run judge figure samples at most this many (100 per class for 10 classes)
JUDGE_PER_CLASS = 100
SWEEP_CLASSES = 200  # the sweep draws every class at every strength: beyond this it is skipped
SWEEP_IMAGES = 200  # per strength (20 per class for 10 classes)
SWEEP_PER_CLASS = 20  # report/guidance.py: guidance_sweep's default
PROMPTS_PER_PROMPT = 10  # samples per caption at the end of a caption run (emoji: 2 sets x 45 captions -> 900)
PROMPTS_MAX_CLASSES = 20  # each set asks 5+ captions per class: beyond this many classes the end of the run skips
# it and names `difflab evaluate RUN --prompts --per-prompt 1`
EVAL_NAME = "end_of_run"  # RUN/eval/end_of_run.json: what was scaled or skipped, and why


@dataclass
class Plan:
    """What the end of a run does, and the reasons for what it leaves out."""

    judge_classes: list[int] = field(default_factory=list)  # empty: no judge figure
    judge_per_class: int = 0
    judge_unconditional: bool = False  # an unconditional run: judge_per_class x the judge's classes, no labels
    sweep: dict | None = None  # guidance_sweep's keyword arguments ({}: its defaults); None: no sweep
    prompts: int = 0  # samples per caption for `evaluate_prompts` (a per-image-caption run); 0: not run
    skipped: dict[str, str] = field(default_factory=dict)  # "judge" / "guidance sweep" -> why
    scaled: dict[str, str] = field(default_factory=dict)  # what was bounded -> how

    def record(self) -> dict:
        return {"title": "End-of-run work: skipped or scaled to the data", **{f"{k} skipped": v for k, v in
                self.skipped.items()}, **{f"{k} scaled": v for k, v in self.scaled.items()}}


def judge_skip_reason(dataset: str, *, data_dir=None, image_size=None) -> str | None:
    """Why the data cannot train and score a judge (too few images, no held-out split, one class), or None."""
    return _judge_data(dataset, data_dir=data_dir, image_size=image_size)[0]


def _judge_data(dataset: str, *, data_dir=None, image_size=None) -> tuple[str | None, int, bool]:
    """`(judge_skip_reason, the judge's class count, whether each image has its own caption)`, from one load of
    each split (a folder decodes every image: loaded once for all the plan needs)."""
    from difflab.data import load_dataset

    try:
        train = load_dataset(dataset, split="train", data_dir=data_dir, image_size=image_size)
        test = load_dataset(dataset, split="test", data_dir=data_dir, image_size=image_size)
    except UserError as err:
        return str(err).split("; fix:")[0], 0, False
    k, captioned = train.num_classes, train.captions is not None
    if k < 2:
        return f"{dataset} has one class: a judge has nothing to tell apart", k, captioned
    if len(train) < JUDGE_MIN_TRAIN:
        return (f"{dataset} has {len(train)} training images; a judge needs at least {JUDGE_MIN_TRAIN} "
                f"(add images, then run `difflab evaluate RUN`)"), k, captioned
    if len(test) == 0:
        return f"{dataset} holds out no images to score a judge on", k, captioned
    return None, k, captioned


def plan(run, *, evaluate: bool) -> Plan:
    """The bounded end-of-run work for `run` (a loaded `Run`)."""
    from difflab.report.guidance import MIN_IMAGES, skip_reason

    p, k = Plan(), run.num_classes
    if k > GRID_CLASSES:
        p.scaled["sample grids"] = f"{GRID_CLASSES} of the {k:,} classes shown, evenly spaced"
    if not (evaluate and run.spec.samplable):
        return p
    c = run.config
    reason, judge_classes, captioned = _judge_data(c.dataset, data_dir=c.data_dir, image_size=c.image_size)
    if reason:
        p.skipped["judge"] = reason
        if k:
            p.skipped["guidance sweep"] = reason
        return p
    if not k:  # unconditional: the judge's confidence and class spread of JUDGE_IMAGES samples; nothing to sweep
        p.judge_unconditional = True
        p.judge_per_class = max(1, JUDGE_IMAGES // judge_classes)
        return p
    if run.is_text and captioned:  # per-image captions (evaluation/prompts.py: per_image_captions)
        if judge_classes > PROMPTS_MAX_CLASSES:
            p.skipped["caption evaluation"] = (f"{judge_classes:,} classes: run `difflab evaluate {run.path} "
                                               "--prompts --per-prompt 1` for judge accuracy and caption retrieval")
        else:
            p.prompts = PROMPTS_PER_PROMPT
    p.judge_classes = shown_classes(k, JUDGE_IMAGES)
    p.judge_per_class = max(1, min(JUDGE_PER_CLASS, JUDGE_IMAGES // len(p.judge_classes)))
    if len(p.judge_classes) < k:
        p.scaled["judge"] = f"{len(p.judge_classes):,} of the {k:,} classes judged, 1 image each"
    sweep = skip_reason(run)
    if sweep is None and k > SWEEP_CLASSES:
        p.skipped["guidance sweep"] = (f"{k:,} classes: a sweep draws every class at every strength; "
                                       "compare strengths with `difflab evaluate RUN --guidance W` instead")
    elif sweep is None:
        n = max(-(-MIN_IMAGES // k), min(SWEEP_PER_CLASS, SWEEP_IMAGES // k))
        p.sweep = {} if n == SWEEP_PER_CLASS else {"n_per_class": n}  # 10 classes: the sweep's own default
    return p


def finish_run(run_dir: Path, *, evaluate: bool = True, model_factory=None, progress: bool = True):
    """Pictures, the one-line quality figure and the guidance sweep every finished run gets, scaled to the data."""
    from difflab.api import judge_run
    from difflab.report.guidance import guidance_sweep
    from difflab.report.html import write_report
    from difflab.report.plots import plot_loss
    from difflab.report.samples import write_class_grid, write_trajectory
    from difflab.run import Run
    from difflab.training.sample_filter import ensure_filter
    from difflab.training.sample_grids import ShownClasses

    run = Run.load(run_dir, model_factory=model_factory)
    folder = run.folder
    plot_loss(folder.read_metrics(), folder.sub("plots", "loss.png"))
    todo = plan(run, evaluate=evaluate)
    why = ensure_filter(run, progress=progress)  # before the pictures: they are drawn through it
    if why is not None and run.config.filter_keep and run.config.conditioning != "text" and run.spec.samplable:
        todo.skipped["sample filter"] = why
    if run.spec.samplable:  # a single-step denoiser has nothing to sample (see `difflab edit denoise-ood`)
        view = ShownClasses.of(run)
        write_class_grid(view, folder.sub("samples", "final.png"))
        write_trajectory(view, folder.sub("samples", "trajectory.png"))
        if todo.judge_unconditional:
            judge_run(run, n_per_class=todo.judge_per_class, name="final", progress=progress)
        if todo.judge_classes:
            subset = {"classes": todo.judge_classes} if len(todo.judge_classes) < run.num_classes else {}
            judge_run(run, n_per_class=todo.judge_per_class, name="final", progress=progress, **subset)
        if todo.sweep is not None:
            guidance_sweep(run, **todo.sweep, verbose=progress)
        if todo.prompts:
            _evaluate_captions(run, todo.prompts)
    for what, why in todo.skipped.items():
        print(f"difflab: note: {what} skipped: {why}", file=sys.stderr, flush=True)
    if todo.skipped or todo.scaled:
        folder.write_eval(EVAL_NAME, todo.record())
    write_report(run_dir)  # last, so it shows every picture and evaluation above
    return run


def _evaluate_captions(run, per_prompt: int) -> None:
    """What `difflab evaluate RUN --prompts --per-prompt N` prints and saves (the report shows it)."""
    from difflab.evaluation.prompts import evaluate_prompts, write_prompts_eval
    from difflab.evaluation.summary import prompt_lines

    result = evaluate_prompts(run, per_prompt=per_prompt)
    write_prompts_eval(run, result)
    shown = {k: v for k, v in result.items() if k != "clip_skipped"}  # its fix names `evaluate`'s flag, not train's
    print("\n".join(prompt_lines(shown, str(run.path))), flush=True)


__all__ = ["EVAL_NAME", "GRID_CLASSES", "Plan", "finish_run", "judge_skip_reason", "plan"]

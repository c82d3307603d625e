"""The end of training trains the run's sample filter (`difflab.sampling.filter`) and saves it in the run folder.

It is trained like the judge but with its own seed, cached by the data's fingerprint (a second run on the same
data copies it in seconds), and skipped, with the reason, where it cannot mean anything: caption runs (it knows
classes, not captions), data of one class, too few images or no held-out split to calibrate it on.
"""

from __future__ import annotations

from difflab import progress as shown
from difflab.evaluation.cached import load_or_train
from difflab.paths import cache_dir
from difflab.sampling.filter import FILTER_SEED, SampleFilter, train_filter


def skip_reason(run) -> str | None:
    """Why `run` gets no filter, or None."""
    from difflab.training.end import judge_skip_reason

    c = run.config
    if not c.filter_keep:
        return "--filter-keep 0"
    if c.conditioning == "text":
        return "a caption run: the filter knows classes, not captions"
    if not run.spec.samplable:
        return "a single-step denoiser draws no samples"
    return judge_skip_reason(c.dataset, data_dir=c.data_dir, image_size=c.image_size)


def ensure_filter(run, *, progress: bool = True) -> str | None:
    """Train (or take from the cache) and save `run`'s filter unless it has one of its `filter_keep`; returns why
    there is none, or None."""
    from difflab.data import load_dataset
    from difflab.evaluation.judge import fingerprint
    from difflab.nn.judge import JudgeNet

    reason = skip_reason(run)
    if reason is not None:
        return reason
    c = run.config
    info = run.folder.read_filter()
    if info is not None and info.get("keep") == c.filter_keep and run.folder.has_weights("filter"):
        return None
    train = load_dataset(c.dataset, split="train", data_dir=c.data_dir, image_size=c.image_size)

    def trained():
        test = load_dataset(c.dataset, split="test", data_dir=c.data_dir, image_size=c.image_size)
        if progress:
            shown.line(f"training the sample filter for {c.dataset} (a classifier that sends unrecognisable "
                       "samples back; once per dataset)")
        made = train_filter(train, test, keep=c.filter_keep, progress="sample filter" if progress else None)
        return made.net, made.meta()

    key = f"filter{FILTER_SEED}-{fingerprint(train)}-{c.filter_keep:g}"
    net, meta = load_or_train(cache_dir("filters"), key, build=lambda meta: JudgeNet(**meta["model"]),
                              train=trained, what="sample filter")
    made = SampleFilter(net, meta["threshold"], meta["keep"], meta["accuracy"])
    run.folder.write_filter(net.state_dict(), made.meta())
    run._filter = False  # loaded again on next use
    if progress:
        shown.line(f"sample filter: {100 * made.accuracy:.1f}% right on held-out real images; keeps a sample when "
                   f"p(its class) >= {made.threshold:.2f}, as {100 * made.keep:g}% of real ones are")
    return None


__all__ = ["ensure_filter", "skip_reason"]

"""Evaluation: the judge classifier and the metrics computed with it."""

from difflab.evaluation.judge import Judge, judge_samples, load_judge

__all__ = ["Judge", "judge_samples", "load_judge"]

"""Evaluation: the judge classifier and the metrics computed with it."""

from difflab.evaluation.judge import Judge, judge_samples, judge_unconditional, load_judge

_LAZY = {"EvalConfig": "suite", "evaluate_images": "suite", "evaluate_run": "suite", "frechet_distance": "metrics",
         "kid": "metrics", "precision_recall": "metrics", "inception_score": "metrics"}  # scipy/matplotlib load only when used


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"difflab.evaluation.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'difflab.evaluation' has no attribute {name!r}")


__all__ = ["EvalConfig", "Judge", "evaluate_images", "evaluate_run", "frechet_distance", "inception_score", "judge_samples", "judge_unconditional", "kid",
           "load_judge", "precision_recall"]

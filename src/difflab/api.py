"""The Python API: `difflab.train(...)` → `Run`, `difflab.load_run(path)`, `difflab.evaluate_run(run)`.

    run = difflab.train(dataset="mnist5k", minutes=5)
    images = run.sample(labels=[5] * 8)          # (8, 1, 28, 28) in [-1, 1]
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path


from difflab.errors import UserError
from difflab.generate import class_labels
from difflab.run import Run, write_class_grid, write_trajectory
from difflab.training import checkpoint as ckpt
from difflab.training import distributed
from difflab.training.config import DENOISE, TrainConfig
from difflab.training.trainer import Trainer, config_diff, resolve_device


def default_run_dir() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


def check_writable(folder: Path) -> None:
    """Fail before training, not after, when the run folder cannot be written; leave no trace either way."""
    created = next((p for p in reversed([folder, *folder.parents]) if not p.exists()), None)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test.tmp"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write to run folder {folder} ({err.strerror}); fix: --out a writable folder") from None
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)  # only the empty folders made here; the trainer makes its own


def train(config: TrainConfig | None = None, *, out: str | Path | None = None, resume: str | Path | None = None,
          progress: bool = True, evaluate: bool = True, allow_rng_reset: bool = False, processes: int | None = None,
          **overrides) -> Run | None:
    """Train (or `resume` a run folder), then write the final grid, trajectory, loss plot and figure.

    `allow_rng_reset` lets a snapshot without RNG state resume (not bitwise exact). `processes` > 1
    trains on that many local workers (torch.distributed, DDP; `batch_size` stays the global batch).
    Under torchrun the environment sets the number; there rank 0 returns the Run, the others None.
    Workers start as `multiprocessing` starts them: a calling script needs `if __name__ == "__main__":`."""
    if resume is not None:
        run_dir = Path(resume)
        if not run_dir.is_dir():
            raise UserError(f"--resume {run_dir}: no such run folder; fix: give the folder `difflab train` wrote")
        saved = TrainConfig.load(run_dir / "config.json")
        config = saved.replace(**overrides) if overrides else saved
        _check_resume_config(saved, config)
    else:
        config = config.replace(**overrides) if config is not None else TrainConfig(**overrides)
        run_dir = Path(out) if out is not None else default_run_dir()
    job = (config, run_dir, resume is not None, progress, allow_rng_reset)
    world = distributed.check_processes(processes, config.batch_size)
    if world > 1 and not distributed.launched():
        check_writable(run_dir)  # fail before starting any worker
        distributed.launch(train_here, job, world)
    else:
        train_here(*job)
        if not distributed.is_main():
            return None
    return finish_run(run_dir, evaluate=evaluate)


def train_here(config: TrainConfig, run_dir: Path, resume: bool, progress: bool, allow_rng_reset: bool) -> None:
    """Train in this process: alone, or as one rank of the group torchrun or `--processes` started."""
    with distributed.process_group(resolve_device(config.device)):
        if distributed.is_main():
            check_writable(run_dir)
        try:
            trainer = Trainer(config, run_dir, resume=resume, show_progress=progress, allow_rng_reset=allow_rng_reset)
            if resume and distributed.is_main():
                config.save(run_dir / "config.json")
        except OSError as err:  # disk full or permissions while preparing: every write is atomic, nothing is lost
            raise UserError(f"cannot write to {run_dir} ({err.strerror or err}); its snapshot, if any, is intact; "
                            "fix: free space or permissions, then run again") from None
        trainer.run()


def _check_resume_config(saved: TrainConfig, new: TrainConfig) -> None:
    """Only the budget and bookkeeping may change on resume; anything that shapes the model may not."""
    diff = config_diff(saved.to_dict(), new.to_dict())
    if diff:
        raise UserError(f"cannot resume with a different configuration ({'; '.join(diff)}); fix: start a new run")


def finish_run(run_dir: Path, *, evaluate: bool = True) -> Run:
    """Pictures and the one-line quality figure every finished run gets."""
    from difflab.report.html import write_report
    from difflab.report.plots import plot_loss

    run = Run.load(run_dir)
    plot_loss(run_dir / "metrics.jsonl", run_dir / "plots" / "loss.png")
    if run.config.objective != DENOISE:  # a single-step denoiser has nothing to sample (see `difflab edit denoise-ood`)
        write_class_grid(run.model, run.config, run.num_classes, run_dir / "samples" / "final.png",
                         class_prompts=run.class_prompts)
        write_trajectory(run, run_dir / "samples" / "trajectory.png")
        if evaluate and run.num_classes:
            evaluate_run(run, n_per_class=100, name="final")
    write_report(run_dir)  # last, so it shows every picture and evaluation above
    return run


def evaluate_run(run: Run, *, n_per_class: int = 100, seed: int = 0, name: str | None = None, **settings) -> dict:
    """Judge accuracy and confidence of `n_per_class` generated images per class; saved in RUN/eval/."""
    from difflab.evaluation import judge_samples, load_judge

    if not run.num_classes:
        raise UserError("judge accuracy needs a class-conditional run (this one is unconditional)")
    judge = load_judge(run.config.dataset, data_dir=run.config.data_dir, image_size=run.config.image_size)
    labels = class_labels(run.num_classes, n_per_class)
    started = time.monotonic()
    images = run.sample(labels, seed=seed, **settings)
    result = judge_samples(judge, images, labels)
    s = run.settings(**settings)
    result.update(solver=s.solver, steps=s.steps, guidance=s.guidance, seed=seed,
                  sampling_seconds=round(time.monotonic() - started, 2))
    name = name or f"{s.solver}-{s.steps}steps-g{s.guidance:g}-n{len(labels)}-seed{seed}"
    (run.path / "eval").mkdir(exist_ok=True)
    ckpt.atomic_write_text(run.path / "eval" / f"{name}.json", json.dumps(result, indent=2))
    return result


def load_run(path: str | Path, *, device: str = "cpu") -> Run:
    return Run.load(path, device=device)


def quality_line(result: dict) -> str:
    digits = set(result.get("per_class_accuracy", {})) <= set("0123456789")
    return (f"generated {'digits' if digits else 'images'}: {100 * result['accuracy']:.1f}% recognised as the requested class "
            f"(judge accuracy on real digits: {100 * result['judge_real_accuracy']:.1f}%)")


__all__ = ["evaluate_run", "finish_run", "load_run", "quality_line", "train"]

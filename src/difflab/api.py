"""The Python API: `difflab.train(...)` → `Run`, `difflab.load_run(path)`, `judge_run(run)` (judge accuracy).

The full evaluation suite is `difflab.evaluate_run` (`difflab.evaluation.suite.evaluate_run`).

    run = difflab.train(dataset="mnist5k", minutes=5)
    images = run.sample(labels=[5] * 8)          # (8, 1, 28, 28) in [-1, 1]
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime
from pathlib import Path

import torch

from difflab.errors import UserError
from difflab.nn.spec import ModelFactory
from difflab.run import Run, RunFolder
from difflab.sampling import class_labels
from difflab.training import distributed, recipes
from difflab.training.config import TrainConfig
from difflab.training.end import finish_run  # the end-of-run work, scaled to the data (re-exported)
from difflab.training.trainer import Trainer, resolve_device


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
          model_factory: ModelFactory | None = None, **overrides) -> Run | None:
    """Train (or `resume` a run folder), then write the final grid, trajectory, loss plot and figure.

    `allow_rng_reset` lets a snapshot without RNG state resume (not bitwise exact). `processes` > 1
    trains on that many local workers (torch.distributed, DDP; `batch_size` stays the global batch).
    Under torchrun the environment sets the number; there rank 0 returns the Run, the others None.
    Workers start as `multiprocessing` starts them: a calling script needs `if __name__ == "__main__":`.
    `model_factory(spec)` builds another network than difflab's U-Net (any `Denoiser`). A new run's unset
    recipe fields (network, batch, lr, EMA, steps) come from the data (`training/recipes.py`); `overrides`,
    and the fields of `config` that differ from `TrainConfig()`'s or that its file gave, always win."""
    if resume is not None:
        run_dir = Path(resume)
        if not run_dir.is_dir():
            raise UserError(f"--resume {run_dir}: no such run folder; fix: give the folder `difflab train` wrote")
        folder = RunFolder(run_dir)
        saved = folder.read_config()
        config = saved.replace(**overrides) if overrides else saved
        folder.check_config(config, saved=saved)
    else:
        explicit = recipes.explicit_keys(config, overrides)  # what the user chose; a recipe fills the rest
        config = config.replace(**overrides) if config is not None else TrainConfig(**overrides)
        config, line = recipes.resolve_for_data(config, explicit)  # saved in config.json: a resume reads it back
        if line and distributed.is_main():
            print(line, flush=True)
        run_dir = Path(out) if out is not None else default_run_dir()
    job = (config, run_dir, resume is not None, progress, allow_rng_reset, model_factory)
    world = distributed.check_processes(processes, config.batch_size)
    if world > 1 and not distributed.launched():
        check_writable(run_dir)  # fail before starting any worker
        distributed.launch(train_here, job, world)
    else:
        train_here(*job)
        if not distributed.is_main():
            return None
    try:
        return finish_run(run_dir, evaluate=evaluate, model_factory=model_factory, progress=progress)
    except UserError as err:  # the model is on disk: say so, and how to get the pictures and figures afterwards
        raise UserError(f"{err} — training itself finished and is saved in {run_dir}; after the fix, "
                        f"`difflab train --resume {run_dir}` does only the end-of-run pictures and report") from None
    except OSError as err:  # a full disk while writing the pictures: the same, worded as every write error
        from difflab.run.outputs import write_error

        raise UserError(write_error(err, kept=f"training itself finished and is saved in {run_dir}",
                                    then=f"`difflab train --resume {run_dir}` to write the end-of-run pictures and "
                                         "report")) from None


def train_here(config: TrainConfig, run_dir: Path, resume: bool, progress: bool, allow_rng_reset: bool,
               model_factory: ModelFactory | None = None) -> None:
    """Train in this process: alone, or as one rank of the group torchrun or `--processes` started."""
    with distributed.process_group(resolve_device(config.device)):
        if distributed.is_main():
            check_writable(run_dir)
        try:
            trainer = Trainer(config, run_dir, resume=resume, show_progress=progress, allow_rng_reset=allow_rng_reset,
                              model_factory=model_factory)
            if resume and distributed.is_main():
                RunFolder(run_dir).write_config(config)
        except OSError as err:  # disk full or permissions while preparing: every write is atomic, nothing is lost
            raise UserError(f"cannot write to {run_dir} ({err.strerror or err}); its snapshot, if any, is intact; "
                            "fix: free space or permissions, then run again") from None
        trainer.run()


def judge_run(run: Run, *, n_per_class: int = 100, seed: int = 0, name: str | None = None, classes=None,
              progress: bool = True, **settings) -> dict:
    """Judge accuracy and confidence of `n_per_class` generated images per class (of `classes`, default all),
    saved as the run's evaluation `name` (`RunFolder.write_eval`); for an unconditional run, the confidence and
    class spread of as many unconditional images (`judge_unconditional`). The quick check every run gets; `difflab.evaluate_run`
    is the full suite (FD, KID, precision/recall, memorisation, ...)."""
    from difflab.data import load_dataset
    from difflab.evaluation import judge_samples, judge_unconditional, load_judge
    from difflab.evaluation.prompts import DRAWN
    from difflab.evaluation.suite import sample_shown
    from difflab.sampling.filter import Redraws

    c = run.config
    judge = load_judge(c.dataset, data_dir=c.data_dir, image_size=c.image_size)
    started, tally = time.monotonic(), Redraws()
    if not run.num_classes:  # unconditional: as many images as the classes' worth, judged by confidence and spread
        n = n_per_class * len(judge.class_names)
        images = sample_shown(run, None, n=n, seed=seed, label="judging: sampling", enabled=progress,
                              tally=tally, **settings)
        held_out = load_dataset(c.dataset, split="test", data_dir=c.data_dir, image_size=c.image_size)
        pick = torch.randperm(len(held_out), generator=torch.Generator().manual_seed(seed))[:n]  # splits may be
        real = held_out.images[pick]  # class-sorted (mnist5k, folders): the first n could be one or two classes
        result = judge_unconditional(judge, images, real)
    else:
        labels = class_labels(run.num_classes, n_per_class)
        if classes is not None:  # a bounded subset (training/end.py: a dataset of thousands of classes)
            labels = torch.as_tensor(list(classes), dtype=torch.long).repeat_interleave(n_per_class)
        images = sample_shown(run, labels, n=None, seed=seed, label="judging: sampling", enabled=progress, tally=tally,
                              **settings)
        result = judge_samples(judge, images, labels)
        if run.is_text:
            result["prompts"] = DRAWN
    s = run.sampler(seed=seed, **settings)
    result.update(solver=s.solver, steps=s.steps, guidance=s.guidance, guidance_method=s.guidance_method,
                  guidance_interval=list(s.guidance_interval), autoguidance=s.autoguidance, seed=seed,
                  **tally.record(s.redraws),
                  sampling_seconds=round(time.monotonic() - started, 2))
    name = name or f"{s.solver}-{s.steps}steps-g{s.guidance:g}-n{len(images)}-seed{seed}"
    run.folder.write_eval(name, result)
    return result


def load_run(path: str | Path, *, device: str = "cpu", model_factory: ModelFactory | None = None) -> Run:
    return Run.load(path, device=device, model_factory=model_factory)


def quality_line(result: dict) -> str:
    """The one-line figure `difflab train` prints, in the dataset's words ("garments", "emoji", "images")."""
    from difflab.data.nouns import noun

    things = noun(result.get("judge_dataset"))
    if "accuracy" not in result:  # an unconditional run (`judge_unconditional`)
        shares = result["class_shares"].values()
        return (f"generated {things}: judge confidence {100 * result['mean_confidence']:.1f}% (real {things}: "
                f"{100 * result['judge_real_confidence']:.1f}%); classes drawn {100 * min(shares):.0f}-"
                f"{100 * max(shares):.0f}% each (even: {100 / len(shares):.0f}%)" + _filtered(result))
    return (f"generated {things}: {100 * result['accuracy']:.1f}% recognised as the requested class "
            f"(judge accuracy on real {things}: {100 * result['judge_real_accuracy']:.1f}%)" + _filtered(result))


def _filtered(result: dict) -> str:
    """"; the filter drew 41 of 1,000 again": the share of the figure the filter bought, said beside it."""
    redrawn = result.get("redrawn")
    return f"; the filter drew {redrawn:,} of {result['n']:,} again" if isinstance(redrawn, int) and redrawn else ""


__all__ = ["finish_run", "judge_run", "load_run", "quality_line", "train"]

"""The evaluation suite: every quality number of a set of generated images, in one JSON + pictures.

`evaluate_images` takes images (from a run or any generator) and the dataset they imitate; `evaluate_run`
samples them from a run first. Results go to `OUT/<name>.json`, pictures to `OUT/<name>/`. Every JSON
records sample sizes, seeds, sampler settings, the judge's real accuracy and the real-vs-real floors, so
two evaluations can be compared; the same images give the same numbers (timings aside).
"""

from __future__ import annotations

import copy
import functools
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from difflab import progress
from difflab.data import load_dataset
from difflab.errors import UserError
from difflab.evaluation import idk, metrics
from difflab.evaluation import memorisation as mem
from difflab.evaluation.fidelity import inception_metrics
from difflab.evaluation.judge import BATCH, Judge, judge_samples, load_judge
from difflab.run import files, outputs
from difflab.signals import Stopping


@dataclass(frozen=True)
class EvalConfig:
    seed: int = 0  # reference subsets and KID subsets
    kid_subsets: int = 50  # KID mean/std over this many random subsets (Bińkowski et al. 2018 use 100)
    kid_subset_size: int = 1000  # capped by the smaller set
    pr_k: int = 3  # k of the k-NN manifolds (Kynkäänniemi et al. 2019 use 3)
    is_splits: int = 10  # IS mean/std over this many chunks (Salimans et al. 2016)
    reference_size: int = 2000  # FD/KID/P-R reference: this many seeded train images, the same at every n
    # (capped at N/2; mnist5k's train split has 4,500), so FDs at different n compare — see fixed_reference
    idk_fractions: tuple[float, ...] = idk.FRACTIONS
    idk_epochs: int = idk.EPOCHS
    inception_weights: str | None = None  # else $DIFFLAB_INCEPTION_WEIGHTS; None: Inception metrics skipped
    pictures: bool = True


EVAL_CHUNK = 250  # images sampled at once: with CFG a U-Net batch of 2 x 250, not the 2 x 500 of `difflab sample`
IMAGES_OUT = Path("eval")  # `difflab evaluate --images` results: ./eval/ where the user stands (not a run folder)
SIGNIFICANT_DIGITS = 8  # JSON floats: float64 features differ run to run only far below this


@functools.lru_cache(maxsize=2)
def _reference(dataset: str, data_dir, image_size):
    """Judge, splits, float64 judge and real features, once per process (the benchmark evaluates 12 cells)."""
    judge = load_judge(dataset, data_dir=data_dir, image_size=image_size)
    train = load_dataset(dataset, split="train", data_dir=data_dir, image_size=image_size)
    test = load_dataset(dataset, split="test", data_dir=data_dir, image_size=image_size)
    net64 = copy.deepcopy(judge.net).double().eval()  # float32 convolutions vary in the last bits with memory layout
    judge64 = Judge(net64, judge.class_names, judge.accuracy, judge.dataset)  # give it float64 images
    return judge, judge64, train, test, features64(net64, train.images), features64(net64, test.images)


@torch.no_grad()
def features64(net, images: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
    """Judge features `(N, 128)` computed in float64, so the same images give the same numbers."""
    return torch.cat([net.features(b.double()) for b in images.split(batch_size)])


def rounded(value):
    """Floats of a JSON-able tree rounded to SIGNIFICANT_DIGITS."""
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        return round(value, SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value))))
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v) for v in value]
    return value


def fixed_reference(n_train: int, *, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into a train split of `n_train` images: a fixed reference set and the floor pool.

    The reference is min(size, n_train // 2) images of one seeded permutation, so it is the same set
    whatever the number of generated images, and FDs at different n (and of different models) compare.
    The floor pool is the rest, in seeded random order, disjoint from the reference: its first n images
    are the real-vs-real floor for n generated images."""
    if size < 1 or n_train < 2:
        raise UserError(f"a reference set needs size >= 1 and at least 2 train images, got size={size}, N={n_train}")
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
    m = min(size, n_train // 2)
    return order[:m], order[m:]


def reference_split(n_real: int, n_generated: int, seed: int, reference_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint indices into the train split: the fixed reference set (`fixed_reference`), and a floor set
    of min(n_generated, N - reference) other real images that stands in for "a perfect generator" at
    (nearly) the same sample size."""
    ref, pool = fixed_reference(n_real, size=reference_size, seed=seed)
    return ref, pool[:n_generated]


def distribution_metrics(gen: torch.Tensor, ref: torch.Tensor, floor: torch.Tensor, config: EvalConfig) -> dict:
    """FD, KID, precision/recall of generated features against the reference, each with its real floor."""
    out = {"n_generated": len(gen), "n_reference": len(ref), "n_floor": len(floor)}
    for tag, feats in (("", gen), ("floor_", floor)):
        out[f"{tag}fd"] = metrics.frechet_distance(feats, ref)
        out[f"{tag}kid_mean"], out[f"{tag}kid_std"] = metrics.kid(
            feats, ref, subsets=config.kid_subsets, subset_size=config.kid_subset_size, seed=config.seed)
        out[f"{tag}precision"], out[f"{tag}recall"] = metrics.precision_recall(ref, feats, k=config.pr_k)
    return out


def _judge_section(judge: Judge, images, labels, folder: Path | None) -> dict:
    from difflab.evaluation.figures import plot_confusion

    result = judge_samples(judge, images, labels)
    if folder is not None:
        predicted = judge.probabilities(images).argmax(1)
        plot_confusion(labels.numpy(), predicted.numpy(), judge.class_names, folder / "confusion.png")
    return result


def _idk_section(judge, images, labels, dataset, train, config, folder: Path | None) -> dict:
    from difflab.evaluation.figures import plot_coverage

    nets = idk.load_idk_judges(dataset, judge, fractions=config.idk_fractions, epochs=config.idk_epochs, train=train)
    report = idk.selective_report(judge, nets, images, labels)
    curves = report.pop("_curves")
    if folder is not None:
        plot_coverage(curves, report["idk_operating_points"], folder / "accuracy_coverage.png")
    return report


def _memorisation_section(images, labels, train, test, feats, judge, folder: Path | None) -> dict:
    report = mem.memorisation(images, train.images, test.images, gen_features=feats["gen"],
                              train_features=feats["train"], test_features=feats["test"])
    index, distance = report.pop("_nearest_index"), report.pop("_nearest_distance")
    if folder is not None:
        mem.closest_pairs_png(images, train.images, index, distance, folder / "closest_pairs.png")
    groups = labels if labels is not None else torch.zeros(len(images), dtype=torch.long)
    names = judge.class_names if labels is not None else ("all",)
    real_groups = train.labels if labels is not None else torch.zeros(len(train), dtype=torch.long)
    report["diversity"] = mem.diversity(feats["gen"], groups, names)
    report["diversity_real_train"] = mem.diversity(feats["train"], real_groups, names)
    return report


def evaluate_images(images: torch.Tensor, labels: torch.Tensor | None, dataset: str, *, out: Path, name: str,
                    config: EvalConfig = EvalConfig(), model: torch.nn.Module | None = None,
                    meta: dict | None = None, data_dir=None, image_size=None) -> dict:
    """All metrics of `images` `(N, C, H, W)` in [-1, 1] against `dataset`; writes OUT/<name>.json
    (pictures in OUT/<name>/). SIGINT/SIGTERM: `Stopped`, nothing written to OUT."""
    out = Path(out)
    say = f"while measuring {len(images):,} images; nothing written to {out}/; to evaluate them, run the same command again"

    def write_json(result: dict) -> None:
        out.mkdir(parents=True, exist_ok=True)
        files.write_json(out / f"{name}.json", result)

    with Stopping(lambda: say) as stop, _Pictures(out / name if config.pictures else None, stop) as pictures:
        result = measure(images, labels, dataset, pictures=pictures.temp, config=config, model=model, meta=meta,
                         name=name, data_dir=data_dir, image_size=image_size)
        result["written"] = str(out / f"{name}.json")
        pictures.publish(lambda: write_json(result), result)
    return result


class _Pictures:
    """An evaluation's picture folder, made in a hidden temp folder beside it (`.<name>.tmp`) and swapped in
    with the JSON at the end, signals held: a stop, a crash or an error mid-way leaves the folder and its
    JSON as they were, never new pictures beside an old JSON or half of a new set."""

    def __init__(self, final: Path | None, stop: Stopping) -> None:
        self.final, self.stop = final, stop
        self.temp = final.with_name(f".{final.name}{files.TEMP_SUFFIX}") if final is not None else None

    def __enter__(self) -> _Pictures:
        if self.temp is not None:
            shutil.rmtree(self.temp, ignore_errors=True)  # left by a killed evaluation
            self.temp.mkdir(parents=True)
        return self

    def publish(self, write_json, result: dict) -> None:
        """The JSON (`write_json`), then the pictures to their place, both or neither as far as a signal goes.
        A JSON that cannot be written (a full disk) leaves the old evaluation whole and the result kept elsewhere."""
        with self.stop.hold():
            try:
                write_json()
            except OSError as err:
                raise outputs.kept_elsewhere(result, err) from None
            if self.temp is not None:
                shutil.rmtree(self.final, ignore_errors=True)  # an earlier evaluation of the same name
                os.replace(self.temp, self.final)

    def __exit__(self, *exc) -> None:
        if self.temp is not None:
            with self.stop.hold():
                shutil.rmtree(self.temp, ignore_errors=True)  # stopped or failed: nothing half-done stays


def measure(images: torch.Tensor, labels: torch.Tensor | None, dataset: str, *, pictures: Path | None, name: str,
            config: EvalConfig = EvalConfig(), model: torch.nn.Module | None = None, meta: dict | None = None,
            data_dir=None, image_size=None) -> dict:
    """Every metric of `images` against `dataset`, as one JSON-able dict; pictures into `pictures` (None: none)."""
    started = time.monotonic()
    with _stage("judge and real features"):
        judge, judge64, train, test, train_feats, test_feats = _reference(dataset, data_dir, image_size)
        _check_images(images, labels, train.image_shape, train.num_classes)
        feats = {"gen": features64(judge64.net, images), "train": train_feats, "test": test_feats}
    ref_idx, floor_idx = reference_split(len(train), len(images), config.seed, config.reference_size)
    result = {"name": name, "dataset": dataset, "n": len(images), "labelled": labels is not None, **(meta or {}),
              "eval_config": asdict(config), "judge_real_accuracy": judge.accuracy, "judge_dataset": dataset}
    if labels is not None:
        with _stage("judge accuracy and IDK judges"):
            result.update(_judge_section(judge64, images.double(), labels, pictures))
            result["idk"] = _idk_section(judge, images, labels, dataset, train, config, pictures)
    with _stage("FD, KID, precision/recall, IS"):
        result["distribution"] = distribution_metrics(feats["gen"], feats["train"][ref_idx], feats["train"][floor_idx],
                                                      config)
        result["distribution"].update(_inception_score_section(judge64, images, train.images[floor_idx], config))
    with _stage("memorisation and diversity"):
        result["memorisation"] = _memorisation_section(images, labels, train, test, feats, judge, pictures)
    with _stage("Inception metrics" if config.inception_weights else "Inception metrics (no weights: skipped)"):
        result.update(inception_metrics(images, train.images[ref_idx], weights=config.inception_weights,
                                        seed=config.seed, floor=train.images[floor_idx]))
    if model is not None and pictures is not None:
        from difflab.evaluation.embeddings import save_embeddings

        with _stage("U-Net embeddings"):
            result["embeddings"] = save_embeddings(model, images, labels, judge.class_names, pictures, seed=config.seed)
    result = rounded(result)
    result["evaluation_seconds"] = round(time.monotonic() - started, 2)
    return result


def _stage(what: str) -> progress.Bar:
    return progress.stage(f"evaluate: {what}")


def _inception_score_section(judge64: Judge, images: torch.Tensor, real: torch.Tensor, config: EvalConfig) -> dict:
    """The IS analogue (judge class probabilities) of the generated images and of the real floor set."""
    out = {}
    for tag, batch in (("", images), ("floor_", real)):
        probs = judge64.probabilities(batch.double())  # (N, K)
        out[f"{tag}is_mean"], out[f"{tag}is_std"] = metrics.inception_score(probs, splits=config.is_splits,
                                                                            seed=config.seed)
    return out


def _check_images(images: torch.Tensor, labels, shape: tuple[int, int, int], num_classes: int) -> None:
    if tuple(images.shape[1:]) != tuple(shape):
        raise UserError(f"images of shape {tuple(images.shape[1:])} do not match the dataset's {tuple(shape)}; "
                        "fix: evaluate against the dataset the images imitate (--dataset)")
    if len(images) < 20:
        raise UserError(f"got {len(images)} images; fix: evaluate at least 20 (distribution metrics need a sample)")
    if labels is not None and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise UserError(f"labels must lie in 0..{num_classes - 1}; fix: use the dataset's class ids")


def evaluate_run(run, *, n: int = 2000, seed: int = 0, name: str | None = None, config: EvalConfig = EvalConfig(),
                 **settings) -> dict:
    """Sample `n` images from `run` (split evenly over classes) and measure them; saved as the run's
    evaluation `name` (`RunFolder.write_eval`, pictures beside it). SIGINT/SIGTERM: `Stopped`, nothing written."""
    from difflab.evaluation.prompts import DRAWN
    from difflab.sampling import class_labels

    k = run.num_classes
    if n < max(k, 20):
        raise UserError(f"--n must be at least {max(k, 20)} (20 images, one per class), got {n}")
    labels = class_labels(k, n // k) if k else None
    folder, what = run.folder, f"sampling {n:,} images"
    with Stopping(lambda: f"while {what}; nothing written to {folder.sub('eval')}/; to evaluate, run the same "
                          "command again") as stop:
        from difflab.sampling.filter import Redraws

        started, tally = time.monotonic(), Redraws()
        images = sample_shown(run, labels, n=None if k else n, seed=seed, tally=tally, **settings)
        what = f"measuring {len(images):,} images"
        s = run.sampler(seed=seed, **settings)
        meta = {"source": str(run.path), "sampler": {"solver": s.solver, "steps": s.steps, "guidance": s.guidance,
                                                      "guidance_method": s.guidance_method,
                                                      "guidance_interval": list(s.guidance_interval),
                                                      "autoguidance": s.autoguidance, "eta": s.eta,
                                                      **tally.record(s.redraws)},
                **({"prompts": DRAWN} if run.is_text and k else {}),
                "seeds": {"sampling": seed, "evaluation": config.seed},
                "sampling_seconds": round(time.monotonic() - started, 2)}
        name = name or f"suite-{s.solver}-{s.steps}steps-g{s.guidance:g}-n{len(images)}-seed{seed}"
        final = folder.sub("eval", name, create=True) if config.pictures else None
        c = run.config
        with _Pictures(final, stop) as pictures:
            result = measure(images, labels, c.dataset, pictures=pictures.temp, name=name, config=config,
                             model=run.model, meta=meta, data_dir=c.data_dir, image_size=c.image_size)
            result["written"] = str(folder.sub("eval", f"{name}.json"))
            pictures.publish(lambda: folder.write_eval(name, result), result)
    return result


def sample_shown(run, labels, *, n: int | None, seed: int, prompts: list[str] | None = None,
                 label: str = "evaluate: sampling", enabled: bool = True, tally=None, **settings) -> torch.Tensor:
    """`run.sample` in chunks of EVAL_CHUNK (the same images), with a bar: sampling is most of an evaluation
    (and of the judge's check at the end of a run). `tally`: a `Redraws` that counts what the filter sent back.
    A text run asked for `labels` draws each class as a whole (`drawn_prompts`), not its first caption alone."""
    if labels is not None and prompts is None and getattr(run, "is_text", False):
        from difflab.evaluation.prompts import drawn_prompts

        labels, prompts = None, drawn_prompts(run, labels, seed=seed)
    total = len(labels) if labels is not None else len(prompts) if prompts is not None else n
    parts = []
    with progress.bar(total, label, unit="img", enabled=enabled) as shown:
        for _, images in run.sample_chunks(labels, prompts=prompts, n=n, seed=seed, chunk_size=EVAL_CHUNK, tally=tally,
                                           **settings):
            parts.append(images)  # (b, C, H, W): kept, small beside the U-Net activations of one chunk
            shown.update(len(images))
    return torch.cat(parts)

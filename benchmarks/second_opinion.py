"""Is the sample filter only pleasing the judge? A second opinion from a classifier that neither chose nor filtered.

The run's filter and difflab's judge are both `JudgeNet`s trained on the run's data (other seeds), so a sampler
that redraws what the filter rejects might only learn to please that architecture. This trains a classifier of
another architecture (strided convolutions, group norm, GELU; its own seed) on the same train split, states
its accuracy on the held-out real images, and scores the same samples with and without the filter:

    python benchmarks/second_opinion.py RUN [--n 1000] [--seed 0] [--rows '[{"guidance": 1.5}]'] [--thresholds 0.5,0.9]

Each row samples n class-conditional images (n/10 per class) with the run's default sampler (or the row's
overrides) without the filter, then with it at its calibrated threshold (and any `--thresholds`). If the second classifier's accuracy rises with the filter as the
judge's does (and to about its accuracy on real images), the filter removes samples that are not their class.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from difflab.data import load_dataset
from difflab.evaluation.judge import fit, shift_augment
from difflab.evaluation.quality import QualityProbe
from difflab.nn.judge import class_probabilities
from difflab.precision import cpu_has_native_bf16
from difflab.run import Run
from difflab.sampling import class_labels
from difflab.sampling.filter import Redraws

SEED = 7  # the judge trains with seed 0, the filter with 1


class SecondNet(nn.Module):
    """Strided convolutions, group norm and GELU (no max-pooling, no batch norm): not the judge's architecture."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 48) -> None:
        super().__init__()
        def block(cin: int, cout: int, kernel: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, kernel, stride=stride, padding=1), nn.GroupNorm(8, cout), nn.GELU()]

        self.body = nn.Sequential(
            *block(in_channels, width, 3, 1), *block(width, width * 2, 4, 2),
            *block(width * 2, width * 2, 3, 1), *block(width * 2, width * 4, 4, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(width * 4, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def train_second(train, epochs: int) -> SecondNet:
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    net = SecondNet(train.image_shape[0], train.num_classes)

    def loss(idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(shift_augment(train.images[idx], generator)), train.labels[idx])

    fit(net, loss, len(train), batch_size=128, epochs=epochs, generator=generator, lr=3e-3, weight_decay=1e-4,
        progress="second classifier")
    return net.eval()


def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    return float((class_probabilities(net, images.float(), 250).argmax(1) == labels).float().mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="the samples' seed")
    p.add_argument("--epochs", type=int, help="the second classifier's (default: ~600 steps' worth, 1..16)")
    p.add_argument("--rows", type=json.loads, default=[{}], help="JSON list of Sampler overrides (default: the run's)")
    p.add_argument("--thresholds", default="", help="comma-separated filter thresholds to try besides the run's own")
    args = p.parse_args()
    run = Run.load(args.run)
    c = run.config
    if not run.num_classes:
        sys.exit("second_opinion.py: the run is unconditional; a second opinion on class accuracy needs a class run")
    if run.filter is None:
        sys.exit(f"second_opinion.py: {run.path} has no sample filter (filter.json); `difflab train --resume RUN` "
                 "trains one")
    train = load_dataset(c.dataset, split="train", data_dir=c.data_dir, image_size=c.image_size)
    test = load_dataset(c.dataset, split="test", data_dir=c.data_dir, image_size=c.image_size)
    started = time.perf_counter()
    second = train_second(train, args.epochs or max(1, min(16, round(600 * 128 / len(train)))))
    real = accuracy(second, test.images, test.labels)
    print(f"run {run.path}; n = {args.n}, seed {args.seed}; this CPU {'has' if cpu_has_native_bf16() else 'lacks'} "
          f"native bf16")
    print(f"second classifier: {100 * real:.1f}% right on {len(test):,} held-out real images "
          f"(trained in {time.perf_counter() - started:.0f} s); the run's filter: {100 * run.filter.accuracy:.1f}%, "
          f"threshold {run.filter.threshold:.2f}")
    probe = QualityProbe(c.dataset, data_dir=c.data_dir, image_size=c.image_size)
    labels = class_labels(run.num_classes, args.n // run.num_classes)
    calibrated = run.filter.threshold
    thresholds = [calibrated] + [float(t) for t in args.thresholds.split(",") if t.strip()]
    print("\n| sampler | filter | judge accuracy / FD÷floor / recall | second classifier's accuracy | redrawn |")
    print("|---|---|---|---|---|")
    for overrides in args.rows:
        redraws = run.sampler(**overrides).redraws or 3
        name = json.dumps(overrides) if overrides else "the run's default"
        for threshold in [None, *sorted(thresholds)]:  # None: no filter
            run.filter.threshold = calibrated if threshold is None else threshold
            tally = Redraws()
            images = run.sample(labels, seed=args.seed, tally=tally,
                                **{**overrides, "redraws": 0 if threshold is None else redraws})
            r = probe.measure(images, labels)
            shown = ("none" if threshold is None else
                     f"p >= {threshold:.2f}{' (calibrated)' if threshold == calibrated else ''}, {redraws} redraws")
            print(f"| {name} | {shown} | {r['accuracy']:.3f} / {r['fd_ratio']:.2f} / {r['recall']:.3f} "
                  f"| {accuracy(second, images, labels):.3f} | {tally.redrawn} |", flush=True)


if __name__ == "__main__":
    main()

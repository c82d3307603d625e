"""What a perfect generator scores on the quality yardstick: FD/floor of REAL images drawn evenly per class.

    python benchmarks/yardstick.py mnist5k [--n 1000] [--seeds 3]
    python benchmarks/yardstick.py emoji --n 900

The "generator" is real train images outside the reference and the floor, n/k per class (drawn with replacement
where a class has too few), so it should score 1x the floor. Printed for the corrected `QualityProbe` (reference
and floor weighted to the samples' class mix) and for the old, unweighted reading, beside the judge's accuracy
on held-out real images in the data's mix and in the even mix.
"""

from __future__ import annotations

import argparse

import torch

from difflab.evaluation import metrics
from difflab.evaluation.quality import QualityProbe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    probe = QualityProbe(args.dataset)
    ref, floor = probe._split(args.n)
    labels, feats, k = probe.train.labels, probe.train_features, probe.train.num_classes
    used = torch.zeros(len(labels), dtype=torch.bool)
    used[ref], used[floor] = True, True
    pool = (~used).nonzero().squeeze(1)
    per_class = args.n // k
    even = torch.arange(k).repeat_interleave(per_class)
    print(f"{args.dataset}: {len(labels):,} train images, class counts {torch.bincount(labels, minlength=k).tolist()}; "
          f"reference {len(ref):,}, floor {len(floor):,}, generator {per_class} per class from {len(pool):,} others")
    print(f"judge accuracy on held-out real images: {probe.judge.accuracy:.3f} in the data's mix, "
          f"{probe.judge.real_accuracy(even):.3f} drawn evenly")
    old_floor = metrics.frechet_distance(feats[floor], feats[ref])
    for seed in range(args.seeds):
        g = torch.Generator().manual_seed(seed)
        picks = []
        for c in range(k):
            mine = pool[labels[pool] == c]
            if len(mine) == 0:
                continue
            order = (torch.randperm(len(mine), generator=g) if len(mine) >= per_class
                     else torch.randint(len(mine), (per_class,), generator=g))
            picks.append(mine[order[:per_class]])
        idx = torch.cat(picks)
        old = metrics.frechet_distance(feats[idx], feats[ref]) / old_floor
        new = probe.measure(probe.train.images[idx], labels[idx])
        print(f"seed {seed}: perfect generator FD/floor {new['fd_ratio']:.2f} (class-mix weighted), {old:.2f} "
              f"(unweighted, the yardstick before 2026-12-04); recall {new['recall']:.3f} (floor {new['recall_floor']:.3f})")


if __name__ == "__main__":
    main()

"""The abstaining ("I don't know") judge and accuracy-vs-coverage of selective classification.

An 11-class judge is trained like the judge (`train_judge`), with the hardest `fraction` of training
digits — lowest probability of their own class under the judge, misclassified ones first — relabelled as
an extra class "idk" (the "reject class" idea of selective classification, Geifman & El-Yaniv 2017,
trained on hard examples). Variants at 2%, 10% and 20% are cached like the judge. Written here: no
maintained library trains a reject class on hard examples or draws risk-coverage curves for torch models.
"""

from __future__ import annotations

import numpy as np
import torch

from difflab.data import ImageDataset, load_dataset
from difflab.evaluation.cached import load_or_train
from difflab.evaluation.judge import BATCH, Judge, fingerprint, train_judge
from difflab.nn.judge import JudgeNet
from difflab.paths import cache_dir

IDK_VERSION = 1  # bump when the recipe changes, so stale caches are retrained
FRACTIONS = (0.02, 0.10, 0.20)  # share of training digits relabelled "idk"
EPOCHS = 3  # fewer than the judge's 8: the features are easy, the reject class needs only a few passes
COVERAGES = (1.0, 0.95, 0.9, 0.8, 0.7, 0.5)  # rows of the accuracy-vs-coverage table


def idk_dataset(train: ImageDataset, judge: Judge, fraction: float) -> ImageDataset:
    """`train` with its hardest `fraction` relabelled as the extra class `len(class_names)` ("idk")."""
    probs = judge.probabilities(train.images)  # (N, K)
    p_true = probs[torch.arange(len(train)), train.labels]  # (N,)
    hard = p_true.argsort()[: round(fraction * len(train))]  # misclassified digits have the lowest p_true
    labels = train.labels.clone()
    labels[hard] = train.num_classes
    return ImageDataset(train.images, labels, (*train.class_names, "idk"), f"{train.name}-idk{fraction:g}")


def load_idk_judges(dataset: str, judge: Judge, *, fractions=FRACTIONS, epochs: int = EPOCHS, data_dir=None,
                    image_size=None, train: ImageDataset | None = None) -> dict[float, JudgeNet]:
    """One cached 11-class judge per fraction, trained first when the cache has none."""
    train = train if train is not None else load_dataset(dataset, split="train", data_dir=data_dir,
                                                         image_size=image_size)
    folder, base = cache_dir("idk-judges"), fingerprint(train)

    def trained(fraction: float) -> tuple[JudgeNet, dict]:  # once per cache
        net = train_judge(idk_dataset(train, judge, fraction), epochs=epochs,
                          progress=f"IDK judge for {dataset} ({fraction:.0%} relabelled)")
        return net, {"model": net.config, "fraction": fraction, "epochs": epochs, "dataset": dataset}

    nets = {}
    for fraction in fractions:
        key = f"{base}-v{IDK_VERSION}-f{fraction:g}-e{epochs}"
        nets[fraction], _ = load_or_train(folder, key, build=lambda meta: JudgeNet(**meta["model"]),
                                          train=lambda fraction=fraction: trained(fraction), what="IDK judge")
    return nets


def coverage_curve(confidence: torch.Tensor, correct: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Keep the most confident first: coverage k/N and accuracy of the kept k, for k = 1..N."""
    order = confidence.argsort(descending=True, stable=True)
    hits = correct[order].double().cumsum(0).numpy()  # (N,)
    kept = np.arange(1, len(order) + 1)
    return kept / len(order), hits / kept


def accuracy_at(coverage: np.ndarray, accuracy: np.ndarray, target: float) -> float:
    """Accuracy when the `target` share of images is kept (the first point with coverage >= target)."""
    return float(accuracy[min(np.searchsorted(coverage, target - 1e-9), len(coverage) - 1)])


@torch.no_grad()
def selective_report(judge: Judge, idk_nets: dict[float, JudgeNet], images: torch.Tensor,
                     labels: torch.Tensor) -> dict:
    """Accuracy-vs-coverage of the judge's max-softmax threshold and of each IDK judge.

    An IDK judge abstains on images whose argmax is "idk" (its own operating point); its curve ranks
    images by p(idk), lowest first, and predicts the argmax over the real classes."""
    probs = judge.probabilities(images)  # (N, K)
    curves = {"judge max-softmax": coverage_curve(probs.max(1).values, probs.argmax(1) == labels)}
    points = {}
    for fraction, net in idk_nets.items():
        p = torch.cat([torch.softmax(net(b), dim=1) for b in images.split(BATCH)])  # (N, K + 1); small batches: RAM
        real_pred = p[:, :-1].argmax(1)
        name = f"idk {100 * fraction:g}%"
        curves[name] = coverage_curve(-p[:, -1], real_pred == labels)
        kept = p.argmax(1) != p.shape[1] - 1
        points[name] = {"coverage": float(kept.float().mean()),
                        "accuracy": float((real_pred[kept] == labels[kept]).float().mean()) if kept.any() else float("nan")}
    table = {name: {f"{c:g}": accuracy_at(cov, acc, c) for c in COVERAGES} for name, (cov, acc) in curves.items()}
    return {"accuracy_at_coverage": table, "idk_operating_points": points, "_curves": curves}

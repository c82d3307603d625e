"""Inception FID / KID / IS through torch-fidelity — only when the user has the weights file on disk.

torch-fidelity is an optional extra (`pip install difflab[fidelity]`): it needs torchvision, which does
not import beside every torch, so it is imported lazily and its absence, or a missing weights file, is
reported as a one-line skip note. torch-fidelity would otherwise download the weights at run time,
which hangs or fails offline; difflab never lets it try.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

WEIGHTS_ENV = "DIFFLAB_INCEPTION_WEIGHTS"  # path of pt_inception-2015-12-05-6726825d.pth


def to_rgb_uint8(images: torch.Tensor) -> torch.Tensor:
    """`(N, C, H, W)` in [-1, 1], C = 1 or 3 → `(N, 3, H, W)` uint8, what torch-fidelity's Inception
    takes (it resizes to 299 itself); a gray channel is repeated three times."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1 or 3, H, W), got shape {tuple(images.shape)}")
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.expand(-1, 3, -1, -1).contiguous() if pixels.shape[1] == 1 else pixels


class _Uint8Images(torch.utils.data.Dataset):
    """The in-memory dataset torch-fidelity iterates over: item i is `(3, H, W)` uint8."""

    def __init__(self, images: torch.Tensor):
        self.images = to_rgb_uint8(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def weights_path(given: str | Path | None) -> Path | None:
    """The weights file from `--inception-weights`, else `$DIFFLAB_INCEPTION_WEIGHTS`, else None."""
    value = given or os.environ.get(WEIGHTS_ENV)
    return Path(value).expanduser() if value else None


def skip_reason(path: Path | None) -> str | None:
    """Why Inception metrics cannot run here, in one line; None when they can."""
    if path is None:
        return (f"Inception FID/KID/IS skipped: no weights file (give --inception-weights PATH or set {WEIGHTS_ENV}; "
                "difflab never downloads them)")
    if not path.is_file():
        return f"Inception FID/KID/IS skipped: weights file {path} not found"
    try:
        import torch_fidelity  # noqa: F401
    except Exception as err:  # ImportError, or torchvision failing to import beside this torch
        return (f"Inception FID/KID/IS skipped: torch-fidelity unavailable ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); fix: pip install 'difflab[fidelity]'")
    return None


def inception_metrics(generated: torch.Tensor, real: torch.Tensor, *, weights: str | Path | None = None,
                      kid_subset_size: int = 1000, seed: int = 0, floor: torch.Tensor | None = None) -> dict:
    """{"inception": {fid, kid_mean, kid_std, isc_mean, isc_std, n_reference}} or {"inception_skipped": reason};
    `floor` (other real images, disjoint from `real`) adds `fid_floor`, what a perfect generator scores."""
    path = weights_path(weights)
    reason = skip_reason(path)
    if reason:
        return {"inception_skipped": reason}
    import torch_fidelity

    options = dict(feature_extractor_weights_path=str(path), verbose=False, cache=False, rng_seed=seed,
                   save_cpu_ram=True, cuda=torch.cuda.is_available())
    m = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(generated), input2=_Uint8Images(real), isc=True, fid=True, kid=True,
        kid_subset_size=min(kid_subset_size, len(generated), len(real)), **options)
    out = {"fid": m["frechet_inception_distance"], "kid_mean": m["kernel_inception_distance_mean"],
           "kid_std": m["kernel_inception_distance_std"], "isc_mean": m["inception_score_mean"],
           "isc_std": m["inception_score_std"], "n_reference": len(real), "weights": str(path)}
    if floor is not None:
        f = torch_fidelity.calculate_metrics(input1=_Uint8Images(floor), input2=_Uint8Images(real), fid=True, **options)
        out.update(fid_floor=f["frechet_inception_distance"], n_floor=len(floor))
    return {"inception": out}

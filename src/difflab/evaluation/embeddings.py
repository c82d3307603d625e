"""U-Net bottleneck embeddings of images, saved as `.npy` with a 2-D map coloured by label.

The bottleneck (output of `mid2`) is read with a forward hook at t = 0 and the null class, so the
vector describes the image, not the requested label; it is averaged over space to `(N, C_mid)`.
The map is PCA (scikit-learn), or UMAP (McInnes et al. 2018) when `umap-learn` is installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from difflab.run import files


@torch.no_grad()
def bottleneck_features(model: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 128) -> torch.Tensor:
    """`(N, C, H, W)` in [-1, 1] → `(N, C_mid)`: the spatial mean of the U-Net's `mid2` output."""
    captured: list[torch.Tensor] = []
    hook = model.mid2.register_forward_hook(lambda _m, _i, out: captured.append(out.mean(dim=(2, 3)).cpu()))
    device = next(model.parameters()).device
    try:
        for batch in images.split(batch_size):
            t = torch.zeros(len(batch), dtype=torch.long, device=device)  # t = 0: the clean image
            model(batch.to(device), t, None)  # cond None → the null class
    finally:
        hook.remove()
    return torch.cat(captured)  # (N, C_mid)


def project_2d(features: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, str]:
    """`(N, D)` → `(N, 2)` and the method's name: UMAP when importable, else PCA."""
    try:
        import umap  # optional: pip install umap-learn

        return umap.UMAP(n_components=2, random_state=seed).fit_transform(features), "UMAP"
    except ImportError:
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(features), "PCA"


def save_embeddings(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None,
                    class_names: tuple[str, ...], folder: Path, *, seed: int = 0) -> dict:
    """Write `embeddings.npy` `(N, C_mid)`, `embeddings_labels.npy` and `embedding_map.png` under `folder`."""
    from difflab.evaluation.figures import plot_embedding_map

    folder.mkdir(parents=True, exist_ok=True)
    feats = bottleneck_features(model, images).numpy()
    files.atomic_save(folder / "embeddings.npy", lambda out: np.save(out, feats))
    if labels is not None:
        files.atomic_save(folder / "embeddings_labels.npy", lambda out: np.save(out, labels.numpy()))
    points, method = project_2d(feats, seed=seed)
    plot_embedding_map(points, labels, class_names, method, folder / "embedding_map.png")
    return {"embeddings": "embeddings.npy", "embedding_map": "embedding_map.png", "embedding_method": method,
            "embedding_dim": int(feats.shape[1])}

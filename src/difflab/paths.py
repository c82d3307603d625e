"""Where difflab keeps things outside a run folder (dataset downloads, cached judges)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """`$DIFFLAB_CACHE`, else `$XDG_CACHE_HOME/difflab`, else `~/.cache/difflab`; created on demand."""
    root = os.environ.get("DIFFLAB_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "difflab")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path

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
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from difflab.errors import UserError

        raise UserError(f"cannot create difflab's cache folder {path} ({err.strerror or err}); fix: set "
                        "DIFFLAB_CACHE to a writable folder, e.g. DIFFLAB_CACHE=/tmp/difflab-cache") from None
    return path

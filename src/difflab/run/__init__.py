"""Run folders: `RunFolder` owns the files, `Run` is a loaded run; `files` holds the safe I/O both use."""

from difflab.run.folder import RunFolder
from difflab.run.loaded import Run

__all__ = ["Run", "RunFolder"]

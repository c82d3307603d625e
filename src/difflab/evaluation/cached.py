"""Evaluation networks trained once per machine and cached: the one load-or-train path they all share.

The judge, the IDK judges and the caption-retrieval encoder are each a small network trained on a dataset's
train split and kept under `cache_dir(...)` as `<key>.safetensors` + `<key>.json` (its constructor arguments
and what it scored). A cache is a convenience, never the user's work: one that is truncated, unreadable,
non-finite or of another shape is said in one line and trained again, instead of a traceback or an error
that sends the user hunting for a file they never made; and a cache that cannot be written (a full disk)
costs the next run a retraining, not this run its result.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from torch import nn

from difflab.errors import UserError
from difflab.run import files as ckpt
from difflab.run.outputs import FIXES

DAMAGE = (UserError, KeyError, TypeError, ValueError, RuntimeError, OSError)  # what a damaged cache raises


def load_or_train(folder: Path, key: str, *, build: Callable[[dict], nn.Module],
                  train: Callable[[], tuple[nn.Module, dict]], what: str) -> tuple[nn.Module, dict]:
    """`(network in eval mode, its metadata)`: read from `folder/key.*`, or `train()`-ed and written there.

    `build(meta)` makes an untrained network from the metadata's constructor arguments; `train()` returns the
    trained network and the metadata to save beside it. Writes are atomic, so an interrupted training leaves
    no half-written cache, and two processes that train at once each write a whole file."""
    weights, meta_path = folder / f"{key}.safetensors", folder / f"{key}.json"
    if weights.is_file() and meta_path.is_file():
        try:
            meta = ckpt.read_json(meta_path)
            net = build(meta)
            net.load_state_dict(ckpt.load_tensors(weights, expect=net.state_dict()))
            return net.eval(), meta
        except DAMAGE as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            print(f"difflab: the cached {what} {weights} is damaged ({first}); training it again",
                  file=sys.stderr, flush=True)
    net, meta = train()
    try:
        ckpt.save_tensors(weights, net.state_dict())
        ckpt.atomic_write_text(meta_path, json.dumps(meta, indent=2))
    except OSError as err:  # a full or read-only disk: the trained network still serves this job
        fix = FIXES.get(err.errno, "check the folder's space and permissions")
        print(f"difflab: warning: could not cache the {what} in {folder} ({err.strerror or err}); it is used "
              f"from memory now and trained again next time; fix: {fix} (or set DIFFLAB_CACHE to another folder)",
              file=sys.stderr, flush=True)
    return net.eval(), meta


__all__ = ["load_or_train"]

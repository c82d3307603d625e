"""Every random number generator a training step may touch, saved and restored together.

Tensors (torch's global and loop generators, the data order, numpy's MT19937 key) go to
`state/rng.safetensors`; the small rest (Python's `random` state, numpy's position) to JSON. Nothing
is pickled. Restoring all of them is what makes a resumed run bitwise equal to an uninterrupted one.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from difflab.errors import UserError


def capture(generator: torch.Generator, order: torch.Tensor, draws: torch.Generator | None = None
            ) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors for safetensors, JSON-able dict) of all RNG state; `draws` is the loop's device generator
    when it is not `generator` itself (GPU runs)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    tensors = {"generator": generator.get_state(), "torch": torch.get_rng_state(), "order": order,
               "numpy_keys": torch.from_numpy(keys.astype(np.int64))}  # (624,) uint32 values, stored as int64
    if draws is not None and draws is not generator:
        tensors["draws"] = draws.get_state()  # a CPU byte tensor even for a CUDA generator
    info = {"numpy": [kind, int(pos), int(has_gauss), float(cached)], "python": [version, list(internal), gauss]}
    return tensors, info


def restore(generator: torch.Generator, tensors: dict[str, torch.Tensor], info: dict,
            draws: torch.Generator | None = None) -> torch.Tensor:
    """Set every generator from a snapshot; returns the saved data order."""
    try:
        generator.set_state(tensors["generator"])
        if draws is not None and draws is not generator:
            if "draws" in tensors:
                draws.set_state(tensors["draws"])
            else:  # a CPU snapshot moving to a GPU has none: reseeded (a device change is not bitwise anyway)
                draws.manual_seed(int(tensors["generator"].sum()))
        torch.set_rng_state(tensors["torch"])
        kind, pos, has_gauss, cached = info["numpy"]
        np.random.set_state((kind, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached))
        version, internal, gauss = info["python"]
        random.setstate((version, tuple(internal), gauss))
        return tensors["order"]
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise UserError(f"the saved RNG state is damaged ({type(err).__name__}: {err}); "
                        "fix: --allow-rng-reset to continue with fresh random numbers (not exact)") from None


def has_rng(tensors: dict, info: dict) -> bool:
    return "rng" in tensors and "rng" in info


__all__ = ["capture", "has_rng", "restore"]

"""Views for visual anagrams (Geng et al. 2024): pixel permutations, each its own inverse here.

A permutation keeps i.i.d. Gaussian noise i.i.d. Gaussian, the condition the method needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from difflab.errors import UserError


@dataclass(frozen=True)
class View:
    name: str
    apply: Callable[[torch.Tensor], torch.Tensor]  # (B, C, H, W) -> (B, C, H, W)
    inverse: Callable[[torch.Tensor], torch.Tensor]


def _involution(name: str, fn) -> View:
    return View(name, fn, fn)


VIEWS = {
    "identity": _involution("identity", lambda x: x),
    "rot180": _involution("rot180", lambda x: torch.rot90(x, 2, dims=(-2, -1))),
    "flipv": _involution("flipv", lambda x: torch.flip(x, dims=(-2,))),  # upside down
    "fliph": _involution("fliph", lambda x: torch.flip(x, dims=(-1,))),  # mirror
    "transpose": _involution("transpose", lambda x: x.transpose(-2, -1)),
}


def get_view(name: str) -> View:
    if name not in VIEWS:
        raise UserError(f"unknown view {name!r}; use one of {', '.join(VIEWS)}")
    return VIEWS[name]

"""The optimizer's state as safetensors + JSON (never pickle), for the resumable snapshot in `state/`.

Why `check_optimizer`: fused AdamW indexes its state without bounds checks, so a saved moment of the
wrong shape writes out of bounds and a negative second moment turns weights into NaN. A saved state is
checked against the optimizer's parameters before it is loaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from difflab.errors import UserError

MOMENTS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")  # AdamW's per-parameter tensors, each of its parameter's shape
REQUIRED = ("step", "exp_avg", "exp_avg_sq")  # what every parameter with state holds


def optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer's state dict into tensors (for safetensors) and JSON-able rest."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in list(tensors.items()) + list(meta["scalars"].items()):
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def check_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta, source: Path) -> None:
    """Refuse (one line) a saved state that does not fit `optimizer`: its parameter groups, and for each
    `<param>.<key>` tensor the parameter it names, its shape, a floating dtype and a sign that makes sense."""
    groups = optimizer.state_dict()["param_groups"]
    shapes = [tuple(p.shape) for g in optimizer.param_groups for p in g["params"]]
    if not (isinstance(meta, dict) and isinstance(meta.get("param_groups"), list) and isinstance(meta.get("scalars"), dict)):
        _refuse(source, "its optimizer entry is not what difflab wrote")
    _check_groups(meta["param_groups"], groups, source)
    seen: dict[int, set[str]] = {}
    for name, value in tensors.items():
        pid, key = _entry(name, len(shapes), source)
        want = shapes[pid] if key in MOMENTS else () if key == "step" else None
        if want is None:
            _refuse(source, f"{name} is not an AdamW state entry")
        if tuple(value.shape) != want or not value.is_floating_point():
            _refuse(source, f"{name} is {value.dtype} {tuple(value.shape)}, parameter {pid} needs floating {want}")
        if key != "exp_avg" and bool((value < 0).any()):
            _refuse(source, f"{name} is negative")
        seen.setdefault(pid, set()).add(key)
    for name, value in meta["scalars"].items():
        _entry(name, len(shapes), source)
        if not (_is_number(value) and math.isfinite(value)):
            _refuse(source, f"{name} is {value!r}, not a number")
    lacking = next((pid for pid, keys in seen.items() if not set(REQUIRED) <= keys), None)
    if lacking is not None:
        _refuse(source, f"parameter {lacking} lacks {', '.join(sorted(set(REQUIRED) - seen[lacking]))}")


def _check_groups(saved: list, groups: list[dict], source: Path) -> None:
    """The same groups over the same parameters; each hyperparameter of the kind the optimizer uses."""
    if len(saved) != len(groups):
        _refuse(source, f"it has {len(saved)} parameter groups, the optimizer {len(groups)}")
    for i, (old, new) in enumerate(zip(saved, groups)):
        if not isinstance(old, dict) or old.get("params") != new["params"]:
            _refuse(source, f"parameter group {i} holds other parameters")
        bad = next((k for k, v in new.items() if k != "params" and k in old and not _same_kind(old[k], v)), None)
        if bad is not None:
            _refuse(source, f"{bad} of parameter group {i} is {old[bad]!r}")


def _same_kind(saved, current) -> bool:
    if current is None or isinstance(current, bool):
        return saved is None or isinstance(saved, bool)
    if _is_number(current):
        return _is_number(saved) and math.isfinite(saved)
    if isinstance(current, (tuple, list)):
        return isinstance(saved, list) and len(saved) == len(current) and all(_same_kind(s, c) for s, c in zip(saved, current))
    return True  # a kind AdamW may add later: it checks it itself


def _entry(name: str, count: int, source: Path) -> tuple[int, str]:
    pid, _, key = name.partition(".")
    if not (pid.isdecimal() and len(pid) < 10 and int(pid) < count):
        _refuse(source, f"{name!r} names no parameter of this model ({count} parameters)")
    return int(pid), key


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _refuse(source: Path, why: str):
    raise UserError(f"{source} does not fit this model's optimizer ({why}); fix: start a new run, or restore the "
                    "folder from a copy")


def keep_fused(optimizer: torch.optim.Optimizer) -> None:
    """After `load_optimizer`: the saved param groups carry their own fused/foreach flags; keep fused (the
    deferred non-finite check needs it) and its step counts on the parameters' device, as fused wants."""
    for group in optimizer.param_groups:
        group.update(fused=True, foreach=None)
    for param, state in optimizer.state.items():
        if torch.is_tensor(state.get("step")):
            state["step"] = state["step"].to(param.device, torch.float32)


__all__ = ["check_optimizer", "keep_fused", "load_optimizer", "optimizer_tensors"]

"""The optimizer's state as safetensors + JSON (never pickle), for the resumable snapshot in `state/`."""

from __future__ import annotations

import torch


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


def keep_fused(optimizer: torch.optim.Optimizer) -> None:
    """After `load_optimizer`: the saved param groups carry their own fused/foreach flags; keep fused (the
    deferred non-finite check needs it) and its step counts on the parameters' device, as fused wants."""
    for group in optimizer.param_groups:
        group.update(fused=True, foreach=None)
    for param, state in optimizer.state.items():
        if torch.is_tensor(state.get("step")):
            state["step"] = state["step"].to(param.device, torch.float32)


__all__ = ["keep_fused", "load_optimizer", "optimizer_tensors"]

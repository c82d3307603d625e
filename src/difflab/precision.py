"""Which float format the network runs in: `fp32`, `bf16` (autocast), or `auto` (bf16 where it pays).

Why auto: on a CPU that multiplies bf16 in hardware (AVX512-BF16 or AMX), bf16 autocast trains the default
model 1.45-1.6x faster at the same quality per step (benchmarks/RESULTS.md, "bf16 on CPU"); without those
instructions bf16 is emulated and slower. On a GPU the loop was host-bound when last measured, and
bf16 alone was slower there (0.79x), so auto keeps fp32 until a GPU measurement says otherwise.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX-BF16 among this CPU's flags (Linux /proc/cpuinfo; elsewhere: no)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", text) is not None


def resolve_precision(name: str, device: torch.device) -> str:
    """`fp32` or `bf16` for this device; `auto` picks bf16 on a CPU with native bf16 only."""
    if name != "auto":
        return name
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def autocast(name: str, device: torch.device) -> torch.autocast:
    """The network's context: bf16 autocast when `name` resolves to bf16 on `device`, else a no-op."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=resolve_precision(name, device) == "bf16")


__all__ = ["PRECISIONS", "autocast", "cpu_has_native_bf16", "resolve_precision"]

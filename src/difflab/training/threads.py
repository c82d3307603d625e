"""Training threads that use the cores nobody else is using (a step callback of the loop).

Two OpenMP threads that spin-wait collapse beside one busy process on a 2-core machine (1.8 steps/s, where
one thread makes 4.6), yet one thread wastes a core on an idle machine. So, in a single-process CPU run, the
governor measures how many of our CPUs OTHER processes keep busy — /proc/stat busy jiffies over our
affinity set, minus this process's own CPU time (`os.times`), over the wall time since the last look —
turns that into the cores they want (`others_demand`: on saturated CPUs the scheduler shares per thread)
and sets `torch.set_num_threads(round(cpus - wanted))`, between 1 and the count it started with. It looks first
`FIRST_CHECK_S` after the first step, then every `INTERVAL_S`, at step boundaries (two small reads).

Results depend on the thread count (~1e-7 per step, which training amplifies), so an idle run keeps its
starting count and trains bitwise like before; `metrics.jsonl` rows carry `threads` and model.json the policy and final count.

Left alone (a fixed count): OMP_NUM_THREADS / MKL_NUM_THREADS set, `DIFFLAB_THREADS=N` (N threads) or
`=off` (whatever torch has: tests that compare runs bitwise need one count throughout), torch threads set
by the caller (not torch's default), many processes (distributed.py shares the cores), non-CPU devices,
and machines without a readable /proc/stat. CPU quotas of cgroups are not seen.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from difflab.errors import UserError
from difflab.run.folder import RunFolder
from difflab.training import distributed

ENV = "DIFFLAB_THREADS"  # "auto" (default): governed; "off": torch's count untouched; N > 0: N threads, fixed
FIRST_CHECK_S = 3.0  # first look this long after the first step: a shorter window is noise, and short runs stay put
INTERVAL_S = 10.0  # then every 10 s: catches a job that starts or ends, costs nothing per step
BAND = 0.75  # change only when the free cores are this far from the current count (rounding's 0.5 + a margin)
SLACK = 0.25  # CPUs with less idle time than this (in cores) count as saturated
BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system irq softirq steal (idle and iowait are free time)


@dataclass(frozen=True)
class Sample:
    """One look at the CPUs: busy jiffies summed over our CPUs, our own CPU seconds, the wall clock."""

    busy: int
    own: float
    wall: float


def read_busy_jiffies(cpus: Iterable[int], path: str | Path = "/proc/stat") -> int | None:
    """Busy jiffies since boot summed over `cpus` (the `cpuN` lines of /proc/stat); None when unreadable."""
    wanted, total, found = {f"cpu{c}" for c in cpus}, 0, 0
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, *fields = line.split()
        if name in wanted:
            values = [int(v) for v in fields]
            total += sum(values[i] for i in BUSY_FIELDS if i < len(values))
            found += 1
    return total if found == len(wanted) else None


def own_cpu_seconds() -> float:
    """User + system CPU time of this process, all its threads."""
    t = os.times()
    return t.user + t.system


def load(before: Sample, after: Sample, ticks_per_s: float) -> tuple[float, float]:
    """(ours, others): cores kept busy by this process and by all others between two samples."""
    wall = after.wall - before.wall
    if wall <= 0:
        return 0.0, 0.0
    ours = max(0.0, after.own - before.own) / wall
    return ours, max(0.0, (after.busy - before.busy) / ticks_per_s / wall - ours)


def others_demand(ours: float, others: float, threads: int, cpus: int) -> float:
    """Cores the other processes want. With idle time left they got it all (`others`); on saturated CPUs
    the scheduler shared them per runnable thread, so each of our `threads` got ours/threads and the
    others' demand is others / (ours/threads) threads: 2 of ours beside 1 hog: 0.67 measured, 1 wanted."""
    if ours + others < cpus - SLACK:
        return others
    return others * threads / max(ours, 0.05)


def choose_threads(cpus: int, wanted: float, current: int, *, ceiling: int, band: float = BAND) -> int:
    """The thread count for `cpus` CPUs of which other processes want `wanted`: `current` unless the free
    cores differ from it by at least `band` (no flapping), else round(free) within [1, ceiling]."""
    free = cpus - wanted
    if abs(free - current) < band:
        return current
    return max(1, min(ceiling, math.floor(free + 0.5)))


def torch_default_threads() -> int:
    """torch's own default intra-op count: the machine's physical cores (sysfs), else its CPUs."""
    cores = set()
    for topo in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        try:
            cores.add(((topo / "physical_package_id").read_text().strip(), (topo / "core_id").read_text().strip()))
        except OSError:
            continue
    return len(cores) or os.cpu_count() or 1


def fixed_choice(env: Mapping[str, str], threads: int) -> tuple[str, int | None] | None:
    """(why, count to set or None) when the thread count is someone's explicit choice; None: govern."""
    value = env.get(ENV, "auto").strip().lower()
    if value == "off":
        return f"{ENV}=off", None
    if value not in ("", "auto"):
        if not value.isdigit() or int(value) < 1:
            raise UserError(f"{ENV}={env[ENV]!r} is not auto, off or a positive integer; fix: unset it or {ENV}=1")
        return f"{ENV}={value}", int(value)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if env.get(name):
            return f"{name}={env[name]}", None
    if threads != torch_default_threads():
        return "set by the caller", None
    return None


def _cpu_set() -> set[int]:
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))


class ThreadGovernor:
    """Step callback: `governor()` after each step; `governor.fields()` → `{"threads": n}` for metric rows;
    `restore()` when training ends (the thread count is process-wide)."""

    def __init__(self, device: torch.device, *, record: Callable[[dict], None] | None = None,
                 env: Mapping[str, str] = os.environ, cpus: set[int] | None = None,
                 read_busy: Callable[[Iterable[int]], int | None] = read_busy_jiffies,
                 own_cpu: Callable[[], float] = own_cpu_seconds, clock: Callable[[], float] = time.monotonic,
                 ticks_per_s: float | None = None) -> None:
        self.active = device.type == "cpu"  # the GPU does the work elsewhere; its threads only feed it
        self.record, self.cpus = record, sorted(_cpu_set() if cpus is None else cpus)
        self.read_busy, self.own_cpu, self.clock = read_busy, own_cpu, clock
        self.ticks = ticks_per_s or (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)
        self.changes, self.last, self.due, self.started = 0, None, math.inf, False  # `due`: when to look next
        fixed, self.start_threads = None, torch.get_num_threads()  # given back by `restore()` when training ends
        if self.active:  # decided now, so a bad DIFFLAB_THREADS is refused before training
            many = distributed.world_size() > 1 or distributed.launched()
            fixed = ("many processes", None) if many else fixed_choice(env, torch.get_num_threads())
        self.policy = f"fixed ({fixed[0]})" if fixed else "auto"
        if fixed and fixed[1] is not None:
            torch.set_num_threads(fixed[1])
        self.ceiling = min(torch.get_num_threads(), len(self.cpus))  # idle: the count torch (or the user) chose

    def fields(self) -> dict:
        return {"threads": torch.get_num_threads()} if self.active else {}

    def __call__(self) -> None:
        if not self.started:
            self._start()
        elif self.clock() >= self.due:
            self._check()

    def restore(self) -> None:
        """Training is over: the caller's thread count again (a later Trainer then sees torch's default)."""
        if torch.get_num_threads() != self.start_threads:
            torch.set_num_threads(self.start_threads)

    def _start(self) -> None:
        """The first step is done: take the first sample (when governed) and record the starting count."""
        self.started = True
        if not self.active:
            return
        if self.policy == "auto":
            self.last = self._sample()
            if self.last is None:
                self.policy = "fixed (no /proc/stat)"
            else:
                self.due = self.last.wall + FIRST_CHECK_S
        self._record(initial=torch.get_num_threads())

    def _sample(self) -> Sample | None:
        busy = self.read_busy(self.cpus)
        return None if busy is None else Sample(busy, self.own_cpu(), self.clock())

    def _check(self) -> None:
        now = self._sample()
        if now is None or self.last is None:  # /proc/stat went away: keep the count, stop looking
            self.due = math.inf
            return
        current, cpus = torch.get_num_threads(), len(self.cpus)
        demand = others_demand(*load(self.last, now, self.ticks), current, cpus)
        target = choose_threads(cpus, demand, current, ceiling=self.ceiling)
        self.last, self.due = now, now.wall + INTERVAL_S
        if target != current:
            torch.set_num_threads(target)
            self.changes += 1
            self._record()

    def _record(self, **first) -> None:
        if self.record is not None:
            self.record({"policy": self.policy, **first, "final": torch.get_num_threads(), "changes": self.changes})


def meta_recorder(folder: RunFolder) -> Callable[[dict], None]:
    """Write the thread record into the run's model.json under "threads" (read, update, atomic write)."""
    def record(info: dict) -> None:
        meta = folder.read_meta()
        meta["threads"] = {**meta.get("threads", {}), **info}
        folder.write_meta(meta)
    return record


__all__ = ["ThreadGovernor", "choose_threads", "fixed_choice", "load", "meta_recorder", "others_demand",
           "read_busy_jiffies"]

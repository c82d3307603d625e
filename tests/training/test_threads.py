"""The thread governor on a simulated machine: fake /proc/stat, fake own CPU time, fake clock (no real hog)."""

import pytest
import torch

from difflab.errors import UserError
from difflab.run.folder import RunFolder
from difflab.training import threads
from difflab.training.threads import (
    FIRST_CHECK_S,
    INTERVAL_S,
    Sample,
    ThreadGovernor,
    choose_threads,
    load,
    meta_recorder,
    others_demand,
    read_busy_jiffies,
)

TICKS = 100  # jiffies per second


class Machine:
    """Two CPUs shared fairly per runnable thread between our spinning threads and `hogs` busy processes."""

    def __init__(self, cpus: int = 2) -> None:
        self.cpus, self.hogs, self.t, self.busy, self.own, self.reads = cpus, 0, 0.0, 0.0, 0.0, 0
        self.readable = True

    def run(self, seconds: float) -> None:
        ours, others = torch.get_num_threads(), self.hogs
        share = min(1.0, self.cpus / (ours + others))  # each runnable thread's fraction of a core
        self.t += seconds
        self.own += ours * share * seconds
        self.busy += (ours + others) * share * seconds * TICKS

    def read_busy(self, cpus) -> int | None:
        self.reads += 1
        return int(self.busy) if self.readable else None

    def governor(self, env=None, device="cpu", record=None) -> ThreadGovernor:
        return ThreadGovernor(torch.device(device), env={} if env is None else env, cpus=set(range(self.cpus)),
                              read_busy=self.read_busy, own_cpu=lambda: self.own, clock=lambda: self.t,
                              ticks_per_s=TICKS, record=record)

    def train(self, governor: ThreadGovernor, seconds: float, step_s: float = 0.25) -> None:
        for _ in range(round(seconds / step_s)):
            self.run(step_s)
            governor()


@pytest.fixture
def two_threads(monkeypatch):
    """torch at 2 threads, which the governor takes for torch's own default; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(threads, "torch_default_threads", lambda: 2)
    yield
    torch.set_num_threads(before)


def test_proc_stat_busy_jiffies_sum_our_cpus(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  9 9 9 9 9 9 9 9 0 0\n"
                    "cpu0 10 1 5 100 7 2 3 4 0 0\n"  # user nice system idle iowait irq softirq steal guest guest_nice
                    "cpu1 20 0 10 200 0 0 0 0 0 0\n"
                    "cpu2 1000 0 0 0 0 0 0 0 0 0\n"
                    "intr 5 6\n")
    assert read_busy_jiffies({0}, stat) == 10 + 1 + 5 + 2 + 3 + 4  # idle and iowait are not busy
    assert read_busy_jiffies({0, 1}, stat) == 25 + 30
    assert read_busy_jiffies({0, 3}, stat) is None  # a CPU missing from the file
    assert read_busy_jiffies({0}, tmp_path / "missing") is None


def test_load_subtracts_our_own_cpu_time():
    before, after = Sample(busy=1000, own=5.0, wall=100.0), Sample(busy=3000, own=15.0, wall=110.0)
    ours, others = load(before, after, TICKS)  # 20 busy core-seconds over 10 s, 10 of them ours
    assert ours == pytest.approx(1.0) and others == pytest.approx(1.0)
    assert load(after, after, TICKS) == (0.0, 0.0)


def test_demand_on_saturated_cpus_counts_threads_not_shares():
    assert others_demand(ours=1.0, others=0.3, threads=1, cpus=2) == pytest.approx(0.3)  # idle time left: all it wanted
    assert others_demand(ours=4 / 3, others=2 / 3, threads=2, cpus=2) == pytest.approx(1.0)  # 2 threads + 1 hog
    assert others_demand(ours=1.0, others=1.0, threads=2, cpus=2) == pytest.approx(2.0)  # 2 threads + 2 hogs


@pytest.mark.parametrize(("wanted", "current", "expected"), [
    (0.0, 2, 2), (0.6, 2, 2), (0.8, 2, 1), (1.0, 2, 1), (2.0, 2, 1),  # down once 0.75 of a core is wanted
    (1.0, 1, 1), (0.4, 1, 1), (0.2, 1, 2), (0.0, 1, 2),  # back up only when nearly all is free again
])
def test_choose_threads_has_hysteresis(wanted, current, expected):
    assert choose_threads(2, wanted, current, ceiling=2) == expected


def test_choose_threads_stays_within_one_and_the_ceiling():
    assert choose_threads(8, 7.9, 8, ceiling=8) == 1
    assert choose_threads(8, 0.0, 1, ceiling=4) == 4


def test_a_hog_drops_a_thread_and_its_end_gives_it_back(two_threads):
    machine = Machine()
    machine.hogs = 1  # from the start: the first look averages over the first FIRST_CHECK_S
    governor = machine.governor()
    machine.train(governor, FIRST_CHECK_S - 0.5)
    assert torch.get_num_threads() == 2 and machine.reads == 1  # not looked yet: short runs keep their count
    machine.train(governor, 1.0)
    assert torch.get_num_threads() == 1 and governor.fields() == {"threads": 1}
    machine.train(governor, 3 * INTERVAL_S)  # beside the hog at 1 thread: no flapping
    assert torch.get_num_threads() == 1 and governor.changes == 1
    machine.hogs = 0
    machine.train(governor, 2 * INTERVAL_S)
    assert torch.get_num_threads() == 2 and governor.changes == 2


def test_an_idle_machine_keeps_the_starting_count_and_looks_rarely(two_threads):
    machine = Machine()
    governor = machine.governor()
    machine.train(governor, 5 * INTERVAL_S)
    assert torch.get_num_threads() == 2 and governor.changes == 0 and governor.policy == "auto"
    assert machine.reads <= 2 + 5  # the start, the first look, then one per interval


def test_two_hogs_leave_one_thread(two_threads):
    machine = Machine()
    machine.hogs = 2
    governor = machine.governor()
    machine.train(governor, FIRST_CHECK_S + 3 * INTERVAL_S)
    assert torch.get_num_threads() == 1 and governor.changes == 1


@pytest.mark.parametrize("env", [{"OMP_NUM_THREADS": "2"}, {"MKL_NUM_THREADS": "2"}, {"DIFFLAB_THREADS": "off"}])
def test_an_explicit_thread_count_is_left_alone(two_threads, env):
    machine = Machine()
    machine.hogs = 1
    governor = machine.governor(env)
    machine.train(governor, 3 * INTERVAL_S)
    assert torch.get_num_threads() == 2 and machine.reads == 0 and governor.policy.startswith("fixed")


def test_threads_set_by_the_caller_are_left_alone(two_threads, monkeypatch):
    monkeypatch.setattr(threads, "torch_default_threads", lambda: 4)  # the caller chose 2 of torch's 4
    machine = Machine()
    machine.hogs = 1
    governor = machine.governor()
    machine.train(governor, 3 * INTERVAL_S)
    assert torch.get_num_threads() == 2 and machine.reads == 0 and governor.policy == "fixed (set by the caller)"


def test_difflab_threads_fixes_the_count(two_threads):
    machine = Machine()
    governor = machine.governor({"DIFFLAB_THREADS": "1"})
    assert torch.get_num_threads() == 1
    machine.train(governor, 3 * INTERVAL_S)
    assert torch.get_num_threads() == 1 and machine.reads == 0
    torch.set_num_threads(2)
    assert machine.governor({"DIFFLAB_THREADS": " Auto "}).policy == "auto"  # the default spelled out


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_difflab_threads_is_refused_naming_it(two_threads, value):
    with pytest.raises(UserError, match=f"DIFFLAB_THREADS='{value}'"):
        Machine().governor({"DIFFLAB_THREADS": value})


def test_unreadable_proc_stat_is_a_no_op(two_threads):
    machine = Machine()
    machine.readable, machine.hogs = False, 1
    governor = machine.governor()
    machine.train(governor, 3 * INTERVAL_S)
    assert torch.get_num_threads() == 2 and governor.policy == "fixed (no /proc/stat)" and machine.reads == 1


def test_proc_stat_going_away_keeps_the_count_and_stops_looking(two_threads):
    machine = Machine()
    governor = machine.governor()
    machine.train(governor, 1.0)
    machine.readable, machine.hogs = False, 1
    machine.train(governor, 3 * INTERVAL_S)
    assert torch.get_num_threads() == 2 and machine.reads == 2


def test_a_gpu_run_is_not_governed(two_threads):
    machine = Machine()
    machine.hogs = 1
    governor = machine.governor(device="cuda")
    machine.train(governor, 3 * INTERVAL_S)
    assert torch.get_num_threads() == 2 and machine.reads == 0 and governor.fields() == {}


def test_changes_are_recorded_in_model_json(two_threads, tmp_path):
    folder = RunFolder(tmp_path)
    folder.write_meta({"class_names": ["a"]})
    machine = Machine()
    machine.hogs = 1
    governor = machine.governor(record=meta_recorder(folder))
    machine.train(governor, 0.25)
    assert folder.read_meta()["threads"] == {"policy": "auto", "initial": 2, "final": 2, "changes": 0}
    machine.train(governor, FIRST_CHECK_S + 1.0)
    meta = folder.read_meta()
    assert meta["threads"] == {"policy": "auto", "initial": 2, "final": 1, "changes": 1}
    assert meta["class_names"] == ["a"]


def test_restore_gives_the_caller_its_count_back(two_threads):
    machine = Machine()
    machine.hogs = 1
    governor = machine.governor()
    machine.train(governor, FIRST_CHECK_S + 1.0)
    assert torch.get_num_threads() == 1
    governor.restore()
    assert torch.get_num_threads() == 2
    machine.governor({"DIFFLAB_THREADS": "1"}).restore()
    assert torch.get_num_threads() == 2

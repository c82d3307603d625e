"""Training over many processes on torch.distributed: DistributedDataParallel, one rank per GPU or CPU share.

Two ways in, one code path: `difflab train --processes N` starts N local workers here (through
`torch.multiprocessing.start_processes`, on a free 127.0.0.1 port), or torchrun starts them and sets
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT itself (many GPUs, many nodes).

`--batch-size` stays the global batch: every rank draws the same random numbers as a 1-process run
(data order, timesteps, noise, label dropout for the whole batch) and trains on its slice of them;
DDP averages the gradients, so the update equals the 1-process one up to float summation order.
Only rank 0 writes. With one process every helper below is the identity (no group, no collective),
so the 1-process path stays bitwise what it was.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path

import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import ProcessException

from difflab.errors import Stopped, UserError

START_METHOD = "forkserver"  # workers fork from a clean server that imported torch once (spawn: once per worker)
GRACE_SECONDS = 10.0  # after one worker fails, how long the others get to exit before SIGTERM, then SIGKILL


# --- where this process stands -------------------------------------------------------------------
def launched() -> bool:
    """True inside a worker of torchrun or of `launch` (they set WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise UserError(f"{name}={os.environ[name]!r} is not an integer; fix: let torchrun set it") from None


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank; from the environment once the group is gone (e.g. after training)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else _env_int("RANK", 0)


def is_main() -> bool:
    """Rank 0: the one process that writes the run folder, logs and shows progress."""
    return rank() == 0


def check_processes(processes: int | None, batch_size: int) -> int:
    """The number of processes the run will use; the global batch must split evenly over them."""
    if processes is not None and processes < 1:
        raise UserError(f"--processes must be at least 1, got {processes}")
    started = _env_int("WORLD_SIZE", 1) if launched() else None
    if started is not None and processes not in (None, started):
        raise UserError(f"--processes {processes}, but torchrun started {started} processes (WORLD_SIZE); "
                        "fix: drop --processes when launching with torchrun")
    world = started or processes or 1
    if batch_size % world:
        fitting = -(-batch_size // world) * world
        raise UserError(f"--batch-size {batch_size} (the global batch) does not split evenly over {world} processes; "
                        f"fix: --batch-size {fitting} or another multiple of {world}")
    return world


# --- the process group ---------------------------------------------------------------------------
@contextlib.contextmanager
def process_group(device: torch.device):
    """Join the group the launcher described in the environment (gloo on CPU, NCCL on CUDA); no-op alone."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1 or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        local, gpus = _env_int("LOCAL_RANK", 0), torch.cuda.device_count()
        if local >= gpus:
            raise UserError(f"process with LOCAL_RANK {local} needs GPU {local}, but this node has {gpus}; "
                            f"fix: at most {gpus} processes per node")
        torch.cuda.set_device(local)
    else:  # share the node's cores instead of oversubscribing them, unless the user said how many
        threads = _env_int("OMP_NUM_THREADS", 0) or _cpus() // _env_int("LOCAL_WORLD_SIZE", world)
        torch.set_num_threads(max(1, threads))
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")  # env:// rendezvous
    try:
        yield
    finally:
        dist.destroy_process_group()


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def resolve_device(name: str) -> torch.device:
    """`auto`: a CUDA GPU when torch sees one, else the CPU; `cuda` without one is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA GPU; fix: --device cpu")
    return torch.device(name)


def local_device(device: torch.device) -> torch.device:
    """`cuda` means this rank's own GPU (cuda:LOCAL_RANK) when there are many ranks."""
    if device.type == "cuda" and world_size() > 1:
        return torch.device("cuda", torch.cuda.current_device())  # set by process_group
    return device


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module the forward pass goes through: DDP around `model` with many ranks, else `model` itself."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


# --- collectives (identity with one process) -----------------------------------------------------
def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def shard(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """This rank's rows [r*B/N, (r+1)*B/N) of each global-batch tensor (dim 0); all of them with one process."""
    n = world_size()
    if n == 1:
        return tensors
    r = rank()
    return tuple(None if t is None else t[r * (len(t) // n) : (r + 1) * (len(t) // n)] for t in tensors)


def mean(value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over ranks (the global batch's loss), the same on every rank."""
    if world_size() == 1:
        return value
    total = value.detach().to(_collective_device(), torch.float64).clone()
    dist.all_reduce(total)
    return (total / world_size()).to(value.device, value.dtype)


def agree(elapsed: float, requested: str | None) -> tuple[float, str | None]:
    """(the largest elapsed time, a stop signal any rank got): budgets and stops decided alike everywhere."""
    if world_size() == 1:
        return elapsed, requested
    code = signal.Signals[requested].value if requested else 0
    both = torch.tensor([elapsed, float(code)], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(both, op=dist.ReduceOp.MAX)
    elapsed, code = both.tolist()
    return elapsed, signal.Signals(int(code)).name if code else None


def barrier() -> None:
    """Wait for every rank (e.g. for rank 0's snapshot before anyone exits)."""
    if world_size() > 1:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


# --- the local launcher (`--processes N`) --------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(fn, args: tuple, processes: int) -> None:
    """Run `fn(*args)` in `processes` local workers (ranks 0..N-1); a worker's UserError becomes ours.

    A worker that fails with a `UserError` writes its one line to a file and exits with code 2; that
    line is raised here, so the user sees it once (not a traceback per worker)."""
    multiprocessing.get_context(START_METHOD).set_forkserver_preload([fn.__module__])  # imported once, not per worker
    with tempfile.TemporaryDirectory(prefix="difflab-ranks-") as messages:
        job = (processes, free_port(), messages, dict(os.environ), fn, args)
        context = torch.multiprocessing.start_processes(_worker, job, nprocs=processes, join=False,
                                                         start_method=START_METHOD)
        with _forward_signals(context.pids()):
            try:
                while not context.join(grace_period=GRACE_SECONDS):
                    pass
            except ProcessException as err:
                found = _worker_message(Path(messages), err.error_index)
                if found is None:
                    raise  # not a user mistake: keep torch's report with the worker's traceback
                message, stopped_by = found
                raise (Stopped(message, stopped_by) if stopped_by else UserError(message)) from None


def _worker(index: int, world: int, port: int, messages: str, environ: dict, fn, args: tuple) -> None:
    os.environ.clear()
    os.environ.update(environ)  # the caller's, now: a forkserver's environment is from when it started
    os.environ.update(RANK=str(index), LOCAL_RANK=str(index), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        fn(*args)
    except UserError as err:  # a Stopped run keeps its kind: the launcher exits 130/143 as one process would
        stopped_by = err.signal_name if isinstance(err, Stopped) else None
        (Path(messages) / f"{index}.json").write_text(json.dumps({"message": str(err), "stopped_by": stopped_by}))
        sys.exit(2)


def _worker_message(messages: Path, first: int) -> tuple[str, str | None] | None:
    """(message, signal it stopped by or None) of the worker that failed first, else of any worker."""
    files = [messages / f"{first}.json", *sorted(messages.glob("*.json"))]
    found = next((json.loads(f.read_text()) for f in files if f.is_file()), None)
    return None if found is None else (found["message"], found["stopped_by"])


@contextlib.contextmanager
def _forward_signals(pids: list[int]):
    """SIGINT/SIGTERM to the launcher ask every worker to stop at one step and save (as with one process);
    a second Ctrl-C interrupts the launcher at once."""
    def forward(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["agree", "barrier", "check_processes", "is_main", "launch", "launched", "local_device", "mean",
           "process_group", "rank", "resolve_device", "shard", "world_size", "wrap"]

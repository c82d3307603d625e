"""One prepared interpreter that forks a child per CLI command (torch and difflab imported once, no torch work
before the fork, so forking is safe); shared by test_kill.py and test_signals_commands.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SERVER = r"""
import json, os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell's background job starts with SIGINT ignored
import torch
torch.set_num_threads(1)
import difflab.cli
{preload}
for line in sys.stdin:
    argv, env, log = json.loads(line)
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1); os.dup2(fd, 2)
        os.environ.update(env)
        code = difflab.cli.main(argv)
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print(json.dumps([os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0,
                      os.WEXITSTATUS(status) if os.WIFEXITED(status) else None]), flush=True)
"""


class ForkServer:
    """`start(argv, env)` forks a child running `difflab.cli.main(argv)` with its output in a log file;
    `wait()` gives (signal that ended it or 0, exit code or None). `preload`: Python run once before any fork."""

    def __init__(self, tmp: Path, *, preload: str = "", env: dict[str, str] | None = None, close_timeout: float = 60):
        env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER.replace("{preload}", preload)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.tmp, self.count, self.close_timeout = tmp, 0, close_timeout

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> tuple[int, Path]:
        self.count += 1
        log = self.tmp / f"child{self.count}.log"
        self.proc.stdin.write(json.dumps([argv, env or {}, str(log)]) + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline()), log

    def wait(self) -> tuple[int, int | None]:
        """(signal that ended the child or 0, exit code or None)."""
        return tuple(json.loads(self.proc.stdout.readline()))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=self.close_timeout)

"""Start the page on loopback, offline: a free port unless one is given, a warning for any other host.

`serve` returns once the server listens (tests drive it in a browser); `difflab studio` then blocks.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from difflab.errors import UserError
from difflab.signals import signal_name

LOOPBACK = "127.0.0.1"
MAX_UPLOAD = "20mb"  # a phone photo is a few MB; Gradio refuses larger uploads before they reach us


@dataclass
class Served:
    url: str
    demo: object  # the running gr.Blocks
    studio: object

    def close(self) -> None:
        """Stop serving; Gradio's own "Closing server running on port ..." is not the user's business (the CLI says
        "stopped" in its words)."""
        with contextlib.redirect_stdout(io.StringIO()):
            self.demo.close()


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def host_warning(host: str) -> str | None:
    """One line when `host` exposes the studio beyond this machine."""
    if host in (LOOPBACK, "localhost", "::1"):
        return None
    return (f"WARNING: --host {host} serves the studio to other machines on the network, with no login, and lets "
            "them run jobs on this model; fix: leave --host out to keep it on 127.0.0.1")


def serve(run, *, host: str = LOOPBACK, port: int | None = None, runs_root: str | Path | None = None,
          out: str | Path | None = None, warm_up: bool = True, quiet: bool = True) -> Served:
    """Load `run` once, build the page and start it; returns when it listens."""
    from difflab.studio.app import build
    from difflab.studio.handlers import Page
    from difflab.studio.offline import theme
    from difflab.studio.session import Studio

    if port is not None and not 1 <= int(port) <= 65535:
        raise UserError(f"--port must be in 1..65535, got {port}; fix: leave it out to pick a free port")
    studio = Studio(run, out=out)
    if warm_up:
        studio.warm_up()
    demo = build(Page(studio, runs_root))
    demo.queue(default_concurrency_limit=1)
    port = port or free_port(host if host != "0.0.0.0" else LOOPBACK)
    options = dict(server_name=host, server_port=int(port), share=False, inbrowser=False, prevent_thread_lock=True,
                   show_error=True, quiet=quiet, theme=theme(), ssr_mode=False, mcp_server=False, footer_links=[],
                   max_file_size=MAX_UPLOAD, allowed_paths=[str(studio.out)], enable_monitoring=False, pwa=False)
    if "_frontend" in inspect.signature(demo.launch).parameters:
        options["_frontend"] = False  # skips Gradio's own 5 x 3 s reachability probe, which fails on a loaded CPU;
        # `wait_until_serving` below checks the same with a patient timeout
    try:
        demo.launch(**options)
    except OSError as err:
        raise UserError(f"cannot listen on {host}:{port} ({err}); fix: give another --port or leave it out") from None
    shown = f"[{host}]" if ":" in host else host
    served = Served(f"http://{shown}:{port}/", demo, studio)
    wait_until_serving(served)
    return served


def wait_until_serving(served: Served, timeout: float = 120.0) -> None:
    """Return once the page answers (a busy 2-core machine can take seconds); stop the server if it never does."""
    import urllib.request

    url = served.url.replace("0.0.0.0", LOOPBACK)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(url, timeout=10) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            served.close()
            raise UserError(f"the studio did not answer at {url} within {timeout:g} s; fix: check that nothing blocks "
                            "loopback connections (a proxy, a firewall), then start it again")
        time.sleep(0.5)


def block(served: Served) -> None:
    """Keep serving until Ctrl-C or SIGTERM (the CLI raises it as an interrupt): the usual end of a server."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt as err:
        by = "" if signal_name(err) == "SIGINT" else f" by {signal_name(err)}"
        print(f"difflab studio: stopped{by}", file=sys.stderr)
    finally:
        served.close()


__all__ = ["LOOPBACK", "Served", "block", "free_port", "host_warning", "serve"]

"""Headless Chromium for the report tests: load a page from disk, collect console lines and requests.

Console messages come from `--enable-logging=stderr` (every console message and uncaught error is a
`CONSOLE` line); requests come from Chromium's own net log (`--log-net-log`), keeping those a page
started (the browser's background requests have the initiator "not an origin"). The host resolver
maps every name to nothing, so even a request that slipped through could not leave the machine.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CONSOLE = re.compile(r":CONSOLE[^\]]*\] (.*)")
NETWORK_SCHEMES = ("http:", "https:", "ws:", "wss:", "ftp:")


@dataclass
class PageLoad:
    console: list[str]  # every console message / uncaught error the page produced
    requests: list[str]  # every network URL the page asked for
    screenshot: Path

    def blank(self) -> bool:
        return is_blank(self.screenshot)


def page_requests(netlog: Path) -> list[str]:
    """URLs of network requests started by a page (not by the browser itself) in a Chromium net log."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log.get("events", []):
        params = event.get("params", {})
        if event["type"] == start and params.get("initiator") != "not an origin":
            urls.append(params.get("url", ""))
    return [u for u in urls if u.startswith(NETWORK_SCHEMES)]


def is_blank(png: Path) -> bool:
    """True for a screenshot with (almost) nothing drawn: flat, or under 0.5% non-white pixels."""
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    return bool(pixels.std() < 5 or (pixels < 200).mean() < 0.005)


@pytest.fixture(scope="session")
def chromium():
    """A function `load(html_path, tmp_dir) -> PageLoad`; skipped, with the fix, where Chromium is missing."""
    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        reason = "no Chromium on PATH, browser test skipped; fix: apt-get install -y --no-install-recommends chromium"
        warnings.warn(reason, stacklevel=2)  # shown in pytest's warnings summary, where a plain skip reason is not
        pytest.skip(reason)

    def load(page: Path, tmp: Path, *, size: str = "1280,2000") -> PageLoad:
        shot, netlog = tmp / f"{page.stem}.png", tmp / f"{page.stem}.netlog.json"
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--host-resolver-rules=MAP * ~NOTFOUND", "--enable-logging=stderr", "--v=0", "--hide-scrollbars",
               f"--user-data-dir={tmp / 'profile'}", f"--log-net-log={netlog}", f"--screenshot={shot}",
               f"--window-size={size}", page.resolve().as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert shot.exists(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
        console = [m.group(1) for line in done.stderr.splitlines() if (m := CONSOLE.search(line))]
        return PageLoad(console, page_requests(netlog), shot)

    return load


@pytest.fixture
def rich_run(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run plus the kinds of files other commands write: eval, explain and edit outputs."""
    run = Path(shutil.copytree(tiny_run.path, tmp_path / "run"))
    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (32, 1))  # (32, 64) a visible gradient
    extra = {"title": "Judge report", "accuracy": 0.9, "class_names": ["a", "b"],
             "confusion_matrix": [[9, 1], [2, 8]],
             "selective": {"coverage": [1.0, 0.8, 0.5], "accuracy": [0.9, 0.95, 0.99]},
             "closest_pairs": [{"generated": 3, "real": 17, "distance": 0.12}]}
    (run / "eval" ).mkdir(exist_ok=True)
    (run / "eval" / "judge.json").write_text(json.dumps(extra))
    (run / "eval" / "judge").mkdir()
    Image.fromarray(grey).save(run / "eval" / "judge" / "confusion.png")  # pictures of eval/judge.json
    Image.fromarray(grey).save(run / "eval" / "loose_figure.png")
    (run / "explain" / "pca").mkdir(parents=True)
    Image.fromarray(grey).save(run / "explain" / "pca" / "trajectory_pca.png")
    (run / "explain" / "pca" / "trajectory_pca.json").write_text(
        json.dumps({"title": "PCA of x_t", "caption": "<b>not bold</b>", "explained_variance": [0.5, 0.2]}))
    (run / "edit").mkdir()
    Image.fromarray(grey).save(run / "edit" / "sdedit_strip.png")
    return run

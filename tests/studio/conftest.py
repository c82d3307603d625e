"""The studio on the tiny run, served on a free loopback port in this process, and a headless Chromium
(Debian's chromium + chromium-driver through Selenium) that cannot resolve any outside address.

Skipped, with the fix, where Gradio, Selenium or chromedriver is missing.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"  # every outside name resolves to nothing
WAIT = 240  # seconds: generous, the 2 CPU cores are shared with training jobs


def folder_digest(path: Path) -> str:
    """Names, sizes and contents of every file under `path`: equal digests, untouched folder."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def studio_run(tiny_run, tmp_path_factory) -> Path:
    """A copy of the tiny run in its own runs/ folder, beside a damaged run and a folder that is no run."""
    root = tmp_path_factory.mktemp("studio-runs")
    run = Path(shutil.copytree(tiny_run.path, root / "tiny"))
    damaged = root / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text("{ not json")
    (root / "notes").mkdir()
    return run


@pytest.fixture(scope="session")
def served(studio_run, tmp_path_factory):
    """The studio serving `studio_run` on 127.0.0.1 (a free port), for the whole session."""
    pytest.importorskip("gradio", reason="gradio is not installed; fix: pip install -e '.[studio]'")
    from difflab.studio.server import serve

    s = serve(studio_run, out=tmp_path_factory.mktemp("studio-out"), runs_root=studio_run.parent)
    yield s
    s.close()


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium driven by Selenium, with the performance (network) log on."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed; fix: pip install selenium")
    from selenium.webdriver.chrome.service import Service

    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    if exe is None or not Path(CHROMEDRIVER).exists():
        pytest.skip("no chromium + chromedriver; fix: apt-get install -y --no-install-recommends chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = exe
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1300",
                "--disable-background-networking", "--disable-component-update", "--no-first-run", OFFLINE):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


@pytest.fixture
def digest():
    """`digest(folder)`: equal before and after, nothing in the folder changed."""
    return folder_digest

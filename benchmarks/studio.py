"""difflab studio's speed on a trained run: Generate 16 default samples, SDEdit one drawing (targets: <= 1 s each).

    python benchmarks/studio.py --run /tmp/exp/default                 # the page's work, in process
    python benchmarks/studio.py --run /tmp/exp/default --browser       # + click → grid shown, in headless Chromium
    python benchmarks/studio.py --run /tmp/exp/default --screenshots docs   # + docs/studio-<tab>.png

"In process" times `Page.generate` / `Page.sdedit` — what a button runs: sampling through `Run.sample` /
`Editor`, a picture after every step, the PNG and .npz written. "Browser" times a click on Generate until
the page shows the final grid (Gradio's queue, the streamed frames, the image transfer included).
The run is read only; outputs go to a temp folder. Prints the load average: the 2 cores are shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from difflab.studio.handlers import Page
from difflab.studio.session import Studio

TABS = {"generate": "Generate", "edit": "Edit", "illusions": "Illusions", "explain": "Explain", "runs": "Runs"}


def stroke() -> dict:
    """A hand-drawn-like 7 on a 280 px canvas (what the sketchpad sends)."""
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[60:80, 70:210] = (0, 0, 0, 255)
    for i in range(160):
        y, x = 80 + i, 200 - i // 2
        rgba[y : y + 4, x - 9 : x + 9] = (0, 0, 0, 255)
    return {"background": None, "layers": [rgba], "composite": rgba}


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median, best) seconds of `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), min(times)


def in_process(page: Page, repeats: int) -> None:
    s = page.run.sampler()
    generate = lambda: list(page.generate("every class", "", 16, s.solver, s.steps, s.guidance, s.guidance_method, 0))
    sdedit = lambda: page.sdedit(stroke(), None, 0.6, "7: 7", 0)
    single = lambda: page.studio.editor().sdedit(page.model_input(stroke(), None), [0.6], label=7)
    rows = [(f"Generate 16 ({s.solver}, {s.steps} steps, {s.guidance_method} {s.guidance:g}), stream + files", generate),
            ("SDEdit one drawing, chain of 4 levels up to 0.6 T (the Edit button)", sdedit),
            ("SDEdit one drawing, one level 0.6 T (Editor.sdedit)", single)]
    for name, fn in rows:
        median, best = timed(fn, repeats)
        print(f"| {name} | {median:.3f} s | {best:.3f} s | {'yes' if median <= 1 else 'NO'} |", flush=True)


def browser(url: str, shots: Path | None, repeats: int) -> None:
    """Click → final grid in headless Chromium (offline host rules); screenshots of each tab into `shots`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1100", "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    wait = WebDriverWait(d, 300, poll_frequency=0.02)  # the default polls every 0.5 s: up to +0.5 s on a 1-s figure
    try:
        d.get(url)
        wait.until(lambda d: d.find_elements(By.ID, "generate-button"))
        times = []
        for i in range(repeats + 1):
            seed = d.find_element(By.CSS_SELECTOR, "#seed input")
            seed.send_keys(Keys.CONTROL, "a")
            seed.send_keys(str(100 + i))  # a new seed each time: the status line names it when the grid is shown
            started = time.perf_counter()
            d.find_element(By.ID, "generate-button").click()
            wait.until(lambda d, i=i: f"seed {100 + i};" in d.find_element(By.ID, "generate-status").text)
            times.append(time.perf_counter() - started) if i else None  # the first click warms the page up
        print(f"| browser: click Generate → 16 samples shown | {statistics.median(times):.3f} s | {min(times):.3f} s | "
              f"{'yes' if statistics.median(times) <= 1 else 'NO'} |", flush=True)
        if shots is not None:
            screenshots(d, wait, shots)
    finally:
        d.quit()


def screenshots(d, wait, shots: Path) -> None:
    """One PNG per tab, each after its main button ran (the Edit tab on a drawn 7)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    def tab(name):
        d.find_element(By.XPATH, f"//button[@role='tab' and contains(., '{name}')]").click()
        time.sleep(1)

    def click_and_wait(button_id, css):
        d.find_element(By.ID, button_id).click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, css))
        time.sleep(1.5)

    shots.mkdir(parents=True, exist_ok=True)
    time.sleep(2)  # the last grid settles
    d.save_screenshot(str(shots / "studio-generate.png"))
    tab("Edit")
    canvas = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#edit-canvas canvas"))[0]
    time.sleep(1)
    d.find_element(By.CSS_SELECTOR, "#edit-canvas button[aria-label='Brush']").click()
    ActionChains(d).move_to_element_with_offset(canvas, -50, -90).click_and_hold().move_by_offset(100, 0).pause(0.1) \
        .move_by_offset(-20, 60).pause(0.1).move_by_offset(-30, 100).release().perform()
    click_and_wait("sdedit-button", "#edit-chain img")
    d.save_screenshot(str(shots / "studio-edit.png"))
    tab("Illusions")
    click_and_wait("anagram-button", "#anagram-image img")
    click_and_wait("hybrid-button", "#hybrid-image img")
    d.save_screenshot(str(shots / "studio-illusions.png"))
    tab("Explain")
    click_and_wait("explain-button", "#explain-image img")
    d.save_screenshot(str(shots / "studio-explain.png"))
    tab("Runs")
    click_and_wait("scan-button", "#runs-table table")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#loss-curve img"))
    time.sleep(1.5)
    d.save_screenshot(str(shots / "studio-runs.png"))
    print(f"wrote {', '.join(f'studio-{t}.png' for t in TABS)} to {shots}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", default="/tmp/exp/default")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2, help="torch threads (the machine's 2 cores)")
    p.add_argument("--browser", action="store_true", help="also time click → grid in headless Chromium")
    p.add_argument("--screenshots", type=Path, metavar="DIR", help="also write studio-<tab>.png of each tab (implies --browser)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"run {args.run}; torch threads {args.threads}; load average {os.getloadavg()[0]:.1f} (2 cores)")
    print("| what | median | best | <= 1 s |\n|---|---|---|---|")
    out = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    in_process(Page(Studio(args.run, out=out)), args.repeats)
    if args.browser or args.screenshots:
        from difflab.studio.server import serve

        served = serve(args.run, out=out, runs_root=Path(args.run).parent)
        try:
            browser(served.url, args.screenshots, args.repeats)
        finally:
            served.close()
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

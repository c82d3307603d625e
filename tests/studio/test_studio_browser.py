"""The studio in a real headless browser: Generate a class, draw and SDEdit, offline and loopback-only."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword):Warning")  # Gradio's queue on pandas 3

WAIT = 240  # seconds: generous, the 2 CPU cores are shared with training jobs


def requested_urls(driver) -> list[str]:
    """Every URL the page asked for since the last call (Chromium's performance log, Network domain)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def wait_for(driver, css: str, *, timeout: float = WAIT):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))[0]


def open_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//button[@role='tab' and contains(., '{name}')]").click()


def fetch_image(src: str) -> np.ndarray:
    """An image the page shows, read back from the studio's own server."""
    with urllib.request.urlopen(src, timeout=60) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())).convert("L"))


def load_page(browser, served) -> None:
    browser.get(served.url)
    wait_for(browser, "#generate-button")


def test_page_loads_offline_and_asks_nothing_of_the_outside(browser, served):
    load_page(browser, served)
    outside = [u for u in requested_urls(browser) if u.startswith(("http", "ws")) and not u.startswith(served.url)]
    assert outside == [], f"the page requested outside addresses: {outside[:5]}"
    assert "difflab studio" in browser.title
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")  # a second tab gets its own session on the same loaded model
    load_page(browser, served)
    browser.close()
    browser.switch_to.window(first)


def test_listens_on_loopback_only(served):
    port = int(served.url.rstrip("/").rsplit(":", 1)[1])
    proc = Path("/proc/net/tcp")
    if not proc.exists():
        pytest.skip("no /proc/net/tcp (not Linux): cannot list listening sockets")
    listening = [line.split()[1] for line in proc.read_text().splitlines()[1:] if line.split()[3] == "0A"]
    ours = [addr for addr in listening if int(addr.split(":")[1], 16) == port]
    assert ours == ["0100007F:" + f"{port:04X}"], f"port {port} listens on {ours}, not 127.0.0.1 only"
    six = Path("/proc/net/tcp6")
    if six.exists():
        assert not [ln for ln in six.read_text().splitlines()[1:] if ln.split()[3] == "0A" and int(ln.split()[1].split(":")[1], 16) == port]


def test_generate_a_class_streams_a_grid(browser, served, studio_run, digest):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    before = digest(studio_run)
    load_page(browser, served)
    picker = browser.find_element(By.CSS_SELECTOR, "#class input")
    picker.click()
    picker.send_keys(Keys.CONTROL, "a")
    picker.send_keys("3: ")
    picker.send_keys(Keys.ENTER)
    count = browser.find_element(By.CSS_SELECTOR, "#n input")
    count.send_keys(Keys.CONTROL, "a")
    count.send_keys("4")
    browser.find_element(By.ID, "generate-button").click()
    status = wait_for(browser, "#generate-status")
    deadline = time.monotonic() + WAIT
    while "4 images" not in status.text and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "4 images" in status.text, f"no result; status: {status.text!r}"
    grid = fetch_image(wait_for(browser, "#generate-grid img").get_attribute("src"))
    assert grid.shape == (4 * (2 * 28 + 3 * 2),) * 2  # 2x2 digits of 28 px with 2 px borders, shown at 4x
    assert grid.std() > 10  # not blank
    assert served.studio.lock.busy is None
    assert digest(studio_run) == before  # nothing written inside the run folder


def test_empty_canvas_says_so_then_a_drawn_stroke_is_sdedited(browser, served, studio_run, digest):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    before = digest(studio_run)
    load_page(browser, served)
    open_tab(browser, "Edit")
    canvas = wait_for(browser, "#edit-canvas canvas")
    browser.find_element(By.ID, "sdedit-button").click()  # nothing drawn yet: a message, and the server keeps serving
    deadline = time.monotonic() + WAIT
    while "the canvas is empty" not in browser.find_element(By.TAG_NAME, "body").text and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "the canvas is empty; fix: draw on it" in browser.find_element(By.TAG_NAME, "body").text
    browser.find_element(By.CSS_SELECTOR, "#edit-canvas button[aria-label='Brush']").click()
    stroke = ActionChains(browser).move_to_element_with_offset(canvas, 0, -80).click_and_hold()
    for _ in range(4):
        stroke = stroke.pause(0.1).move_by_offset(0, 40)
    stroke.release().perform()
    browser.find_element(By.ID, "sdedit-button").click()
    chain = fetch_image(wait_for(browser, "#edit-chain img").get_attribute("src"))
    assert chain.shape == (4 * (2 * 28 + 3 * 2), 4 * (4 * 28 + 5 * 2))  # noised row over edited row, 4 levels
    model_input = fetch_image(wait_for(browser, "#edit-input img").get_attribute("src"))
    ink = model_input > 128
    assert ink.any() and ink.mean() < 0.5  # the stroke arrived as a digit-sized mark
    assert digest(studio_run) == before

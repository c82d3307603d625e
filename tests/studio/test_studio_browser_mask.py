"""The studio's painted-mask inpainting in a real headless browser: draw, Forward noise, paint the mask, Inpaint."""

from __future__ import annotations

import io
import urllib.request

import numpy as np
import pytest
from PIL import Image
from test_studio_browser import WAIT, fetch_image, load_page, open_tab, wait_for

from difflab.studio.pictures import SCALE

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword):Warning")  # Gradio's queue on pandas 3

SIZE, PAD = 28, 2  # the tiny run's digits and the grid's white borders
RESULT = "//label[@data-testid='block-label' and contains(., 'input · mask · inpainted')]/parent::div//img"


def until(driver, check, what: str, *, timeout: float = WAIT):
    """`check(driver)` once it is truthy; a failure naming `what` when it never is."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.3).until(check)
    except TimeoutException:
        driver.save_screenshot("/tmp/studio-mask-timeout.png")
        raise AssertionError(f"{what} never happened in {timeout} s; page: /tmp/studio-mask-timeout.png") from None


def page_says(driver, words: str) -> bool:
    from selenium.webdriver.common.by import By

    return words in driver.find_element(By.TAG_NAME, "body").text


def on_screen(element) -> np.ndarray:
    """What `element` shows, as RGB pixels (the editor paints into WebGL, which the page cannot read back)."""
    return np.asarray(Image.open(io.BytesIO(element.screenshot_as_png)).convert("RGB")).astype(int)


def stroke(driver, element, start: tuple[int, int], step: tuple[int, int], steps: int = 4) -> None:
    """Press at `start` (pixels from the element's centre), move `steps` times by `step`, release."""
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(driver).move_to_element_with_offset(element, *start).click_and_hold()
    for _ in range(steps):
        chain = chain.pause(0.1).move_by_offset(*step)
    chain.release().perform()


def noised_drawing(driver, served):
    """A fresh page with a vertical stroke drawn and Forward-noised: the mask editor's canvas, holding the input."""
    from selenium.webdriver.common.by import By

    load_page(driver, served)
    open_tab(driver, "Edit")
    canvas = wait_for(driver, "#edit-canvas canvas")
    driver.find_element(By.CSS_SELECTOR, "#edit-canvas button[aria-label='Brush']").click()
    stroke(driver, canvas, (0, -80), (0, 40))
    driver.find_element(By.ID, "noise-button").click()
    wait_for(driver, "#edit-input img")
    editor = wait_for(driver, "#mask-editor canvas")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", editor)

    def holds_the_input(_):  # the white digit on black, not the empty editor's plain background
        gray = on_screen(editor).mean(-1)
        return (gray < 40).mean() > 0.2 and (gray > 215).any()

    until(driver, holds_the_input, "the mask editor showing the model input")
    return editor


def panels(picture: np.ndarray) -> list[np.ndarray]:
    """The model-pixel panels of a one-row grid picture (`pictures.grid_picture`, borders of PAD, at SCALE)."""
    cells = picture[SCALE // 2 :: SCALE, SCALE // 2 :: SCALE].astype(int)  # one screen pixel from each model pixel
    n = (cells.shape[1] - PAD) // (SIZE + PAD)
    assert cells.shape == (SIZE + 2 * PAD, n * (SIZE + PAD) + PAD)
    return [cells[PAD : PAD + SIZE, PAD + k * (SIZE + PAD) : PAD + k * (SIZE + PAD) + SIZE] for k in range(n)]


def test_a_painted_mask_is_inpainted_and_the_rest_kept(browser, served, studio_run, digest):
    from selenium.webdriver.common.by import By

    before = digest(studio_run)
    editor = noised_drawing(browser, served)
    browser.find_element(By.CSS_SELECTOR, "#mask-editor button[aria-label='Brush']").click()
    shown = on_screen(editor)
    stroke(browser, editor, (-70, 0), (35, 0))  # across the middle of the vertical bar
    red = lambda rgb: (rgb[..., 0] > 180) & (rgb[..., 1] < 120)  # the editor's #ff3030 brush, on a gray-only picture
    until(browser, lambda _: red(on_screen(editor)).sum() > red(shown).sum() + 200, "red paint on the mask editor")
    browser.find_element(By.ID, "inpaint-button").click()
    result = until(browser, lambda d: d.find_elements(By.XPATH, RESULT), "the inpainted picture")[0]
    picture = fetch_image(result.get_attribute("src"))
    assert picture.shape == (SCALE * (SIZE + 2 * PAD), SCALE * (3 * (SIZE + PAD) + PAD))  # input · mask · inpainted
    given, mask, out = panels(picture)
    assert set(np.unique(mask)) <= {0, 255}, "the mask panel is not black and white"
    painted = mask == 255
    assert 0 < painted.sum() < painted.size // 2, f"mask covers {painted.sum()} of {painted.size} pixels"
    rows, cols = np.nonzero(painted)
    assert 8 <= rows.mean() <= 20 and np.ptp(cols) > np.ptp(rows), "the mask is not the horizontal stroke across the middle"
    model_input = panels(fetch_image(wait_for(browser, "#edit-input img").get_attribute("src")))[0]
    np.testing.assert_array_equal(given, model_input)  # the input panel is the model input the page showed
    assert np.abs(out - given)[~painted].max() <= 1, "inpainting changed pixels outside the mask"
    assert np.abs(out - given)[painted].max() > 32, "nothing was regenerated inside the mask"
    assert served.studio.lock.busy is None
    assert digest(studio_run) == before  # nothing written inside the run folder


def test_inpaint_with_nothing_painted_says_so_and_the_server_keeps_serving(browser, served, studio_run, digest):
    from selenium.webdriver.common.by import By

    before = digest(studio_run)
    load_page(browser, served)
    open_tab(browser, "Edit")
    wait_for(browser, "#inpaint-button").click()  # no model input yet
    until(browser, lambda d: page_says(d, "no model input yet"), "the no-input message")
    assert page_says(browser, "no model input yet; fix: press SDEdit or Forward noise first, then paint the mask on it")
    noised_drawing(browser, served)
    browser.find_element(By.ID, "inpaint-button").click()
    until(browser, lambda d: page_says(d, "no mask painted"), "the empty-mask message")
    assert page_says(browser, "no mask painted; fix: paint over the part of the input to regenerate")
    assert not browser.find_elements(By.XPATH, RESULT), "a picture came out of an empty mask"
    with urllib.request.urlopen(served.url, timeout=60) as response:  # still serving
        assert response.status == 200
    assert served.studio.lock.busy is None
    assert digest(studio_run) == before

"""Every button's work on the tiny run, without a browser (`difflab.studio.handlers.Page` → `Studio`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.errors import UserError
from difflab.studio import handlers
from difflab.studio.handlers import MASK_SCALE, Page
from difflab.studio.session import Studio


@pytest.fixture(scope="module")
def page(studio_run, tmp_path_factory) -> Page:
    return Page(Studio(studio_run, out=tmp_path_factory.mktemp("page-out")), studio_run.parent)


def stroke() -> dict:
    rgba = np.zeros((140, 140, 4), np.uint8)
    rgba[20:120, 62:78] = (0, 0, 0, 255)  # (H, W, RGBA): one black vertical stroke on transparent paper
    return {"background": None, "layers": [rgba], "composite": rgba}


def test_generate_streams_each_step_then_files_outside_the_run(page, studio_run, digest, monkeypatch):
    before = digest(studio_run)
    monkeypatch.setattr(handlers, "FRAME_S", 0.0)  # every step's grid
    updates = list(page.generate("3: 3", "", 4, "dpm++", 3, 2.0, "cfg", 0))
    assert [at for at, _ in updates] == [(1, 3), (2, 3), None]  # the last step's x is the result itself
    assert all(out[0].shape == updates[-1][1][0].shape for _, out in updates)
    grid, png, npz, generated, status = updates[-1][1]
    assert grid.shape == (4 * (2 * 28 + 3 * 2),) * 2 and "4 images" in status
    assert generated.labels.tolist() == [3, 3, 3, 3] and generated.images.shape == (4, 1, 28, 28)
    assert str(page.studio.out) in png and npz.endswith(".npz") and page.studio.lock.busy is None
    again = list(page.generate("3: 3", "", 4, "dpm++", 3, 2.0, "cfg", 0))[-1][1][3]
    assert torch.equal(again.images, generated.images)  # same seed, same images
    assert digest(studio_run) == before


@pytest.mark.parametrize(("field", "value", "message"), [
    ("steps", float("nan"), "steps must be a whole number"), ("guidance", 1e300, "guidance strength must be"),
    ("n", 10_000, "number of samples must be"), ("seed", -1, "seed must be"), ("solver", "euler", "unknown solver"),
])
def test_generate_refuses_bad_fields_in_one_line(page, field, value, message):
    fields = dict(choice="3: 3", prompt="", n=4, solver="dpm++", steps=3, guidance=2.0, method="cfg", seed=0)
    fields[field] = value
    with pytest.raises(UserError, match=message) as err:
        list(page.generate(*fields.values()))
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="not a prompt model"):
        list(page.generate("3: 3", "a seven", 4, "dpm++", 3, 2.0, "cfg", 0))


def test_sdedit_noise_and_inpaint_from_a_drawing(page, studio_run, digest):
    before = digest(studio_run)
    shown, chain, mask_value, x, caption = page.sdedit(stroke(), None, 0.6, "7: 7", 0)
    assert x.shape == (1, 1, 28, 28) and shown.shape == (4 * 32, 4 * 32)
    assert chain.shape == (4 * (2 * 28 + 3 * 2), 4 * (4 * 28 + 5 * 2)) and "0.6" in caption
    assert mask_value["background"].shape == (28 * MASK_SCALE, 28 * MASK_SCALE, 3)  # the model's pixels, no border
    _, strip, _, _, caption = page.noise(stroke(), None, 0)
    assert strip.shape[1] == 4 * (5 * 28 + 6 * 2) and "t = " in caption
    painted = np.zeros((*mask_value["background"].shape[:2], 4), np.uint8)
    painted[: painted.shape[0] // 2] = (255, 0, 0, 255)  # the top half of the shown input
    out = page.inpaint(x, {"layers": [painted]}, "unconditional", 0)
    assert out.shape == (4 * (28 + 4), 4 * (3 * 28 + 4 * 2))
    assert digest(studio_run) == before


def test_edit_refuses_an_empty_canvas_a_bad_upload_and_bad_masks(page, tmp_path):
    with pytest.raises(UserError, match="the canvas is empty"):
        page.sdedit({"composite": np.zeros((50, 50, 4), np.uint8)}, None, 0.5, "unconditional", 0)
    bad = tmp_path / "digit.png"
    bad.write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(UserError, match="digit.png is not a readable image"):
        page.sdedit(None, str(bad), 0.5, "unconditional", 0)
    with pytest.raises(UserError, match="noise level must be"):
        page.sdedit(stroke(), None, float("nan"), "unconditional", 0)
    with pytest.raises(UserError, match="no model input yet"):
        page.inpaint(None, {"layers": []}, "unconditional", 0)
    x = torch.zeros(1, 1, 28, 28)
    with pytest.raises(UserError, match="covers the whole image"):
        page.inpaint(x, {"layers": [np.full((64, 64, 4), 255, np.uint8)]}, "unconditional", 0)


def test_illusions(page):
    anagram = page.anagram("6: 6", "9: 9", "rot180", 2, 0)
    assert anagram.shape == (4 * (2 * 28 + 3 * 2), 4 * (2 * 28 + 3 * 2))
    hybrid = page.hybrid("1: 1", "7: 7", 1.5, 3, 0)
    assert hybrid.shape == (4 * (2 * 28 + 3 * 2), 4 * (3 * 28 + 4 * 2))
    with pytest.raises(UserError, match="unknown view"):
        page.anagram("6: 6", "9: 9", "spin", 2, 0)


def test_explain_follows_the_last_generate(page, studio_run, digest):
    from PIL import Image

    with pytest.raises(UserError, match="no sample to explain yet"):
        page.explain(None, 500, "saliency")
    before = digest(studio_run)
    generated = list(page.generate("2: 2", "", 1, "dpm++", 3, 2.0, "cfg", 0))[-1][1][3]
    png = page.explain(generated, 500, "saliency")
    assert png.startswith(str(page.studio.out)) and Image.open(png).size[0] > 100
    with pytest.raises(UserError, match="timestep must be"):
        page.explain(generated, 5000, "saliency")
    assert digest(studio_run) == before


def test_runs_tab_lists_runs_and_reports_a_damaged_one(page, studio_run, digest):
    before = digest(studio_run)
    table, found = page.scan(str(studio_run.parent))
    assert [p.split("/")[-1] for p in found] == ["damaged", "tiny"]  # "notes" holds no run
    assert "| tiny | 60 |" in table and "damaged" in table and "config.json" in table.split("| damaged |")[1]
    one, curve = page.show_run(str(studio_run))
    assert "| tiny | 60 |" in one and curve is not None and curve.startswith(str(page.studio.out))
    assert "This is the run the studio has loaded" in one
    other, curve = page.show_run(str(studio_run.parent / "damaged"))
    assert curve is None and f"start a studio on it: `difflab studio {studio_run.parent / 'damaged'}`" in other
    with pytest.raises(UserError, match="is not a directory"):
        page.scan(str(studio_run / "nowhere"))
    assert digest(studio_run) == before


def test_save_to_run_is_the_one_write(page, studio_run):
    with pytest.raises(UserError, match="nothing generated yet"):
        page.save(None)
    generated = list(page.generate("1: 1", "", 2, "dpm++", 3, 2.0, "cfg", 0))[-1][1][3]
    message = page.save(generated)
    saved = list((studio_run / "samples").glob("studio-*.png"))
    assert len(saved) == 1 and str(saved[0]) in message
    saved[0].unlink()  # leave the shared copy as the other tests expect it


def test_cli_checks_the_run_before_importing_gradio(tmp_path, capsys):
    from difflab.cli import main
    from difflab.studio.server import host_warning

    assert main(["studio", str(tmp_path / "missing")]) == 2
    assert "run folder" in capsys.readouterr().err
    assert host_warning("127.0.0.1") is None and "0.0.0.0" in host_warning("0.0.0.0")


def test_the_core_and_its_cli_never_import_the_studio():
    import subprocess
    import sys

    code = ("import sys, difflab, difflab.cli; difflab.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m == 'gradio' or m.startswith('difflab.studio')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stderr[-500:]


def test_autoguidance_field_adds_the_guide_on_top_of_cfg(page, studio_run, digest):
    before = digest(studio_run)
    assert page.studio.run.guide is not None  # the tiny run saved its half-budget EMA as guide.safetensors
    images = {w: list(page.generate("3: 3", "", 2, "dpm++", 3, 2.0, "cfg", 0, w))[-1][1][3].images for w in (1, 3)}
    default = list(page.generate("3: 3", "", 2, "dpm++", 3, 2.0, "cfg", 0))[-1][1][3].images
    assert not torch.equal(images[1], images[3])  # the field reaches the sampler
    assert torch.equal(default, images[page.studio.run.sampler().autoguidance])  # empty field: the run's own
    for bad, message in ((0.5, "autoguidance must be"), (float("nan"), "autoguidance must be")):
        with pytest.raises(UserError, match=message):
            list(page.generate("3: 3", "", 2, "dpm++", 3, 2.0, "cfg", 0, bad))
    assert digest(studio_run) == before

"""Image folders: one sub-folder per class, any Pillow image, every bad file named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from difflab.data import load_dataset
from difflab.data.folder import load_image_folder
from difflab.errors import UserError


def _png(path: Path, value: int = 128, size: tuple[int, int] = (8, 8), mode: str = "L") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(path)
    return path


def _two_classes(root: Path) -> Path:
    for i in range(3):
        _png(root / "cats" / f"{i}.png", 10 * i)
    for i in range(2):
        _png(root / "apes" / f"{i}.png", 200 + i)
    return root


def test_two_classes_of_grayscale(tmp_path):
    root = _two_classes(tmp_path / "pets")
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "cats" / ".hidden.png").write_bytes(b"junk")
    (root / "metadata.jsonl").write_text("{}\n")
    ds = load_image_folder(root)
    assert ds.images.shape == (5, 1, 8, 8) and ds.class_names == ("apes", "cats")
    assert ds.labels.tolist() == [0, 0, 1, 1, 1] and ds.name == "pets"
    assert ds.images[0].unique().item() == pytest.approx(200 / 127.5 - 1)


def test_mixed_modes_and_sizes(tmp_path):
    root = _two_classes(tmp_path)
    _png(root / "cats" / "colour.png", 50, mode="RGB")
    _png(root / "cats" / "big.png", 50, size=(16, 12))
    ds = load_image_folder(root)
    assert ds.images.shape == (7, 3, 8, 8)  # any colour image → RGB; the most common size wins
    resized = load_image_folder(root, image_size=4)
    assert resized.images.shape == (7, 3, 4, 4)


def test_transparency_is_laid_over_white_not_black(tmp_path):
    root = _two_classes(tmp_path)
    rgba = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent black...
    rgba.paste((255, 0, 0, 255), (0, 0, 4, 8))  # ...beside opaque red
    rgba.save(root / "cats" / "cutout.png")
    gray_alpha = Image.new("LA", (8, 8), (0, 0))  # transparent black in a grayscale-with-alpha image
    gray_alpha.save(root / "apes" / "cutout.png")
    ds = load_image_folder(root)
    assert ds.images.shape[1] == 3  # RGBA is colour
    pixels = np.rint((ds.images.numpy() + 1) * 127.5).astype(int)  # apes 0, 1, cutout; cats 0, 1, 2, cutout
    assert (pixels[2] == 255).all()  # the gray cutout: all white
    red, clear = pixels[6][:, 1, 1], pixels[6][:, 1, 6]  # (C, H, W): left half red, right half transparent
    assert red.tolist() == [255, 0, 0] and clear.tolist() == [255, 255, 255]


def test_gray_with_alpha_stays_gray_and_sixteen_bit_transparency_is_kept(tmp_path):
    root = _two_classes(tmp_path)  # all grayscale
    Image.new("LA", (8, 8), (0, 0)).save(root / "apes" / "cutout.png")  # transparent black
    deep = Image.fromarray(np.zeros((8, 8), np.uint16))  # mode I;16
    deep.save(root / "cats" / "deep.png", transparency=0)  # 16-bit, its value 0 marked transparent
    ds = load_image_folder(root)
    assert ds.images.shape == (7, 1, 8, 8)  # still one channel
    assert (ds.images[2] == 1).all() and (ds.images[6] == 1).all()  # apes 0, 1, cutout; cats 0, 1, 2, deep: white


@pytest.mark.parametrize("side, trained", [(30, 28), (50, 48), (64, 64), (90, 64), (8, 8)])
def test_the_default_side_suits_a_unet(tmp_path, side, trained):
    for i in range(2):
        _png(tmp_path / "set" / "only" / f"{i}.png", 90, size=(side, side + 10))
    assert load_image_folder(tmp_path / "set").images.shape[-1] == trained  # 3-4 halvings: a multiple of 4 or 8


def test_non_square_images_are_centre_cropped_not_stretched(tmp_path):
    root = tmp_path / "wide"
    strip = np.zeros((8, 24, 3), np.uint8)
    strip[:, :8] = (255, 0, 0)
    strip[:, 8:16] = (0, 255, 0)  # the centre third
    strip[:, 16:] = (0, 0, 255)
    for i in range(2):
        (root / "only").mkdir(parents=True, exist_ok=True)
        Image.fromarray(strip).save(root / "only" / f"{i}.png")
    ds = load_image_folder(root)
    assert ds.images.shape == (2, 3, 8, 8)  # the shorter side of 24 x 8
    pixels = np.rint((ds.images[0].numpy() + 1) * 127.5)
    assert (pixels[1] == 255).all() and (pixels[0] == 0).all() and (pixels[2] == 0).all()  # only the green centre


def test_large_photos_default_to_a_trainable_size(tmp_path):
    root = tmp_path / "photos"
    for i in range(2):
        _png(root / "flowers" / f"{i}.jpg", 90, size=(500, 375), mode="RGB")
    assert load_image_folder(root).images.shape == (2, 3, 64, 64)  # not 375 px: DEFAULT_MAX_SIDE
    assert load_image_folder(root, image_size=128).images.shape == (2, 3, 128, 128)  # the user may go higher


def test_an_unreadable_file_says_permission_not_damage(tmp_path, monkeypatch):
    root = _two_classes(tmp_path)
    real_open = Image.open

    def guarded(path, *args, **kwargs):
        if Path(path).name == "1.png" and Path(path).parent.name == "cats":
            raise PermissionError(13, "Permission denied", str(path))  # what chmod 000 gives a non-root user
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", guarded)
    with pytest.raises(UserError, match=r"cats/1\.png: not readable \(permission denied\); fix: `chmod a\+r`"):
        load_image_folder(root)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    root = _two_classes(tmp_path)
    wide = np.array([[0, 65535], [32896, 1000]] * 4, dtype=np.uint16).repeat(4, axis=1)  # (8, 8)
    Image.fromarray(wide).save(root / "cats" / "deep.png")
    assert Image.open(root / "cats" / "deep.png").mode.startswith("I")
    ds = load_image_folder(root)
    pixels = np.rint((ds.images[5, 0].numpy() + 1) * 127.5)  # apes 0, 1; cats 0, 1, 2, deep
    assert pixels[0, 0] == 0 and pixels[0, 4] == 255 and pixels[1, 0] == 128 and pixels[1, 4] == 4


@pytest.mark.parametrize(("name", "content", "words"), [
    ("notes.png", b"hello, not an image", "not an image Pillow can read"),
    ("empty.png", b"", "empty file (0 bytes)"),
    ("broken.png", None, "damaged image"),
])
def test_bad_file_is_named(tmp_path, name, content, words):
    root = _two_classes(tmp_path)
    bad = root / "cats" / name
    if content is None:
        _png(bad, size=(64, 64))
        bad.write_bytes(bad.read_bytes()[:60])  # header intact, pixel data cut
    else:
        bad.write_bytes(content)
    with pytest.raises(UserError) as err:
        load_image_folder(root)
    assert str(bad) in str(err.value) and words in str(err.value) and "fix:" in str(err.value)


@pytest.mark.parametrize("limit", [40, 20])  # 8x8 = 64 pixels: a warning over 40, an error over 2 x 20
def test_decompression_bomb(tmp_path, monkeypatch, limit):
    root = _two_classes(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(UserError, match=r"apes/0\.png: too many pixels"):
        load_image_folder(root)


def test_layout_errors(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "flat").mkdir()
    _png(tmp_path / "flat" / "a.png")
    with pytest.raises(UserError, match=r"flat/a\.png: a file at the top"):
        load_image_folder(tmp_path / "flat")
    (tmp_path / "none").mkdir()
    with pytest.raises(UserError, match="no class sub-folders"):
        load_image_folder(tmp_path / "none")
    root = _two_classes(tmp_path / "pets")
    (root / "dogs").mkdir()
    with pytest.raises(UserError, match=r"dogs: empty class folder"):
        load_image_folder(root)


def test_through_load_dataset_splits(tmp_path):
    root = tmp_path / "pets"
    for c in ("a", "b"):
        for i in range(10):
            _png(root / c / f"{i}.png", i)
    train = load_dataset(f"folder:{root}", split="train")
    test = load_dataset(f"folder:{root}", split="test", image_size=4)
    assert len(train) == 18 and len(test) == 2 and test.image_shape == (1, 4, 4)


@pytest.mark.slow  # a 1-step run (~5 s)
def test_a_folder_run_saved_without_a_size_reloads_at_the_size_it_trained_at(tmp_path):
    import json

    from difflab.cli import main
    from difflab.run import RunFolder

    for i in range(4):
        _png(tmp_path / "big" / "only" / f"{i}.png", 60 * i, size=(72, 72))
    out = tmp_path / "run"
    assert main(["train", "--dataset", f"folder:{tmp_path / 'big'}", "--image-size", "72", "--steps", "1", "--no-eval",
                 "--channels", "8,16", "--batch-size", "4", "--num-sample-grids", "0", "--no-progress",
                 "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "image_size": None}))  # as runs before the 64 px default
    assert RunFolder(out).read_config().image_size == 72  # from model.json: its data still matches its model

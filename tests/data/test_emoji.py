"""The emoji dataset: emoji-test.txt parsing, real glyphs from Noto Color Emoji, the cache, the errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import ImageFont

from difflab.data import emoji, load_dataset
from difflab.data.emoji import load_emoji, parse_emoji_test, parse_spec, render
from difflab.errors import UserError

FONT = os.environ.get("DIFFLAB_EMOJI_FONT") or next((p for p in emoji.FONT_PATHS if Path(p).is_file()), None)
TEST = os.environ.get("DIFFLAB_EMOJI_TEST") or next((p for p in emoji.TEST_PATHS if Path(p).is_file()), None)
needs_font = pytest.mark.skipif(FONT is None, reason="no NotoColorEmoji.ttf: apt-get install fonts-noto-color-emoji")
needs_both = pytest.mark.skipif(FONT is None or TEST is None,
                                reason="no emoji font or emoji-test.txt: apt-get install fonts-noto-color-emoji unicode-data")
GROUPS = ("smileys & emotion", "people & body", "animals & nature", "food & drink", "travel & places", "activities",
          "objects", "symbols", "flags")
SAMPLE = """\
# emoji-test.txt (a few lines of Unicode's layout)
# group: Smileys & Emotion

# subgroup: face-smiling
1F600                                                  ; fully-qualified     # 😀 E1.0 grinning face
263A FE0F                                              ; fully-qualified     # ☺️ E0.6 smiling face
263A                                                   ; unqualified         # ☺ E0.6 smiling face
1F600 1F600                                            ; fully-qualified     # 😀😀 E1.0 two faces the font draws apart
0078                                                   ; fully-qualified     # x E0.0 a letter the font lacks

# group: Component

# subgroup: skin-tone
1F3FB                                                  ; component           # 🏻 E1.0 light skin tone
1F3FC                                                  ; fully-qualified     # 🏼 E1.0 medium-light skin tone

# group: People & Body

# subgroup: hand-fingers-open
1F44B 1F3FD                                            ; fully-qualified     # 👋🏽 E1.0 waving hand: medium skin tone
1F590 FE0F                                             ; fully-qualified     # 🖐️ hand with fingers splayed
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """`emoji:20` (at most 20 a group, 180 glyphs) rendered once for the module, in its own cache."""
    if FONT is None or TEST is None:
        pytest.skip("no emoji font or emoji-test.txt: apt-get install fonts-noto-color-emoji unicode-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIFFLAB_CACHE", str(tmp_path_factory.mktemp("emoji-cache")))
        return load_dataset("emoji:20")


@pytest.fixture
def sample_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "emoji-test.txt"
    path.write_text(SAMPLE, encoding="utf-8")
    monkeypatch.setenv("DIFFLAB_EMOJI_TEST", str(path))
    return path


def _one_line_error(match: str, call) -> str:
    with pytest.raises(UserError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_parser_keeps_fully_qualified_outside_component():
    emojis = parse_emoji_test(SAMPLE)
    assert [e.name for e in emojis] == ["grinning face", "smiling face", "two faces the font draws apart",
                                        "a letter the font lacks", "waving hand: medium skin tone",
                                        "hand with fingers splayed"]  # version stripped, also when absent
    assert emojis[0].text == "\U0001F600" and emojis[1].text == "\u263A\uFE0F"
    assert emojis[4].class_name("group") == "people & body"
    assert emojis[4].class_name("subgroup") == "hand fingers open"


def test_parser_and_spec_refuse_bad_input():
    _one_line_error("line 2", lambda: parse_emoji_test("# group: G\nnot an emoji line\n"))
    _one_line_error("before any", lambda: parse_emoji_test("1F600 ; fully-qualified # 😀 E1.0 grinning face\n"))
    _one_line_error("no fully-qualified", lambda: parse_emoji_test("# group: G\n# subgroup: s\n"))
    assert parse_spec("emoji") == ("group", None)
    assert parse_spec("emoji:subgroup:40") == ("subgroup", 40) and parse_spec("emoji:7") == ("group", 7)
    for bad in ("emoji:0", "emoji:07", "emoji:²", "emoji:faces", "emoji:3:4", "emoji:subgroup:group", "emoji:4:subgroup",
                "emoji:", "emojis"):
        _one_line_error("not", lambda bad=bad: parse_spec(bad))
    _one_line_error("not understood", lambda: load_dataset("emoji:faces"))  # through the one entry point


def test_missing_files_name_the_debian_packages(monkeypatch, tmp_path):
    for variable in ("DIFFLAB_EMOJI_FONT", "DIFFLAB_EMOJI_TEST"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(emoji, "FONT_PATHS", (str(tmp_path / "NotoColorEmoji.ttf"),))
    monkeypatch.setattr(emoji, "TEST_PATHS", (str(tmp_path / "emoji-test.txt"),))
    for name, variable in (("NotoColorEmoji.ttf", "DIFFLAB_EMOJI_FONT"), ("emoji-test.txt", "DIFFLAB_EMOJI_TEST")):
        text = _one_line_error(f"{name} not found", load_emoji)
        assert "apt-get install fonts-noto-color-emoji unicode-data" in text and variable in text
        (tmp_path / name).write_bytes(b"")  # found now: the next lookup fails
    for variable in ("DIFFLAB_EMOJI_TEST", "DIFFLAB_EMOJI_FONT"):
        monkeypatch.setenv(variable, str(tmp_path / "nowhere"))
        _one_line_error(f"{variable}=.*no such file", load_emoji)


def test_a_file_that_is_no_font_and_bad_arguments(sample_file, monkeypatch):
    monkeypatch.setenv("DIFFLAB_EMOJI_FONT", str(sample_file))
    assert "apt-get install" in _one_line_error("not a colour emoji font", load_emoji)
    for size in (0, 137, True, 32.0):
        _one_line_error("image_size", lambda size=size: load_emoji(image_size=size))
    _one_line_error("classes", lambda: load_emoji(classes="groups"))
    _one_line_error("limit", lambda: load_emoji(limit=0))


@needs_font
def test_glyphs_the_font_cannot_draw_are_skipped(sample_file):
    ds = load_emoji(classes="subgroup")  # the sample file through DIFFLAB_EMOJI_TEST, the real font
    assert ds.captions == ("grinning face", "smiling face", "waving hand: medium skin tone", "hand with fingers splayed")
    assert ds.class_names == ("face smiling", "hand fingers open") and ds.labels.tolist() == [0, 0, 1, 1]


@needs_font
def test_without_raqm_sequences_are_skipped_and_said(sample_file, monkeypatch, capsys):
    monkeypatch.setattr(emoji, "_has_raqm", lambda: False)  # Pillow's basic layout: one glyph per code point
    ds = load_emoji()
    assert ds.captions == ("grinning face", "smiling face", "hand with fingers splayed")  # VS16 dropped, skin tone not joined
    assert "raqm" in capsys.readouterr().err


@needs_font
def test_colours_are_rgb_on_white_without_a_dark_fringe():
    font = ImageFont.truetype(FONT, size=emoji.NATIVE_SIZE)
    face = render(font, "\U0001F600", emoji.NATIVE_PIXELS).astype(int)  # (136, 136, 3), not resized
    white = (face == 255).all(-1)
    assert white[0].all() and white[:, 0].all()  # the background
    inside = face[60:70, 20:30].mean((0, 1))  # the cheek: Noto's yellow (R > G > B), not BGR's blue
    assert inside[0] > 200 and inside[0] > inside[1] > inside[2] + 60
    rows = [y for y in range(len(face)) if not white[y].all()]
    outline = np.array([face[y, x] for y in rows for x in np.flatnonzero(~white[y])[[0, -1]]])  # each row's ends
    assert len(outline) > 200 and outline[:, 0].min() >= 200  # partly covered yellow; premultiplied alpha darkens it
    small = render(font, "\U0001F600", 32)
    assert small.shape == (32, 32, 3) and small.dtype == np.uint8 and small[16, 6, 0] > 200
    assert render(font, "x", 32) is None and render(font, "\U0001F600\U0001F600", 32) is None


def test_real_emoji_shapes_labels_captions(dataset):
    assert dataset.images.shape[1:] == (3, 32, 32) and dataset.images.dtype == torch.float32
    assert dataset.images.min() == -1.0 and dataset.images.max() == 1.0
    assert (dataset.images[:, :, 0, 0] == 1.0).float().mean() > 0.9  # corners are the white background
    assert dataset.class_names == GROUPS and dataset.name == "emoji-train"
    counts = torch.bincount(dataset.labels, minlength=9)
    assert counts.min() >= 15 and counts.max() <= 18  # 20 a group, 2 held out
    assert "grinning face" in dataset.captions and len(set(dataset.captions)) == len(dataset)
    assert not any(c.startswith("E") and c[1].isdigit() for c in dataset.captions)


def test_splits_are_disjoint_and_sizes_selectable():
    if FONT is None or TEST is None:
        pytest.skip("no emoji font or emoji-test.txt: apt-get install fonts-noto-color-emoji unicode-data")
    train, test = load_dataset("emoji:10", split="train"), load_dataset("emoji:10", split="test", image_size=32)
    assert set(train.captions).isdisjoint(test.captions) and len(train) + len(test) == 90
    assert torch.bincount(test.labels, minlength=9).tolist() == [1] * 9
    big = load_dataset("emoji:subgroup:1", image_size=64)
    assert big.images.shape[1:] == (3, 64, 64) and big.num_classes > 90  # every subgroup once


@needs_both
def test_cache_hit_is_identical_and_a_damaged_cache_is_rebuilt(cache, monkeypatch, capsys):
    first = load_emoji(limit=3)
    (path,) = (cache / "datasets" / "emoji").glob("*.npz")
    assert "cached in" in capsys.readouterr().out
    rebuild = emoji._render_all
    monkeypatch.setattr(emoji, "_render_all", lambda *a: pytest.fail("rendered again despite the cache"))
    again = load_emoji(limit=3)
    assert torch.equal(again.images, first.images) and torch.equal(again.labels, first.labels)
    assert again.captions == first.captions and again.class_names == first.class_names
    monkeypatch.setattr(emoji, "_render_all", rebuild)
    good = path.read_bytes()
    for damaged in (b"not a zip file", good[: len(good) // 2], good[:-30]):
        path.write_bytes(damaged)
        rebuilt = load_emoji(limit=3)
        assert torch.equal(rebuilt.images, first.images) and rebuilt.captions == first.captions
        assert "damaged" in capsys.readouterr().err and path.read_bytes() != damaged
    assert len(list(path.parent.iterdir())) == 1  # no temp files left beside it

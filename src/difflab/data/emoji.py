"""`emoji`: every Unicode emoji drawn by Noto Color Emoji, a real colour dataset with captions, offline.

The pictures come from Debian's `fonts-noto-color-emoji` (NotoColorEmoji.ttf, colour bitmaps) and the
names and categories from `unicode-data` (`/usr/share/unicode/emoji/emoji-test.txt`):

    apt-get install fonts-noto-color-emoji unicode-data

Set `DIFFLAB_EMOJI_FONT=PATH` or `DIFFLAB_EMOJI_TEST=PATH` to use other copies of these two files.

What an image is: each `fully-qualified` emoji (skin-tone swatches of the "Component" group left out) is
drawn once at the font's only size, 109 px (a 136 x 128 bitmap), centred on a white square canvas and
resized to `image_size` (32 by default) with Lanczos, which antialiases when shrinking. Its label is
its group (9 classes, "smileys & emotion" … "flags") or, with `classes="subgroup"`, its subgroup
("face smiling", …); its caption is its English name ("grinning face", "flag: Japan"). Sequences the
font cannot draw as one glyph (blank, or several glyphs side by side) are skipped.

Why white: emoji are designed to sit on light backgrounds (their dark outlines read there), and a fixed
colour is what a diffusion model needs, so it spends nothing on learning a random backdrop. The colour
bitmaps come with straight (not premultiplied) alpha, so drawing them onto white leaves no dark fringe.

Spec strings (`load_dataset`): `emoji`, `emoji:subgroup`, `emoji:N`, `emoji:subgroup:N`. `N` keeps at
most N emoji per class, evenly spaced through the file's order, so a test or a quick try renders a few
hundred glyphs rather than ~3,600. The spec is saved with a run, so every later load gets the same set.

Rendering takes seconds, so the pixels are cached once as `.npz` under `$DIFFLAB_CACHE/datasets/emoji/`,
named by a fingerprint of both files, the size, the class mode, N and the renderer; a damaged cache
file is rendered again, never a traceback.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageDraw, ImageFont, features

from difflab import progress
from difflab.data.dataset import ImageDataset, from_uint8
from difflab.errors import UserError
from difflab.paths import cache_dir
from difflab.run.files import atomic_write_bytes

FONT_PATHS = ("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",  # Debian, Ubuntu
              "/usr/share/fonts/noto/NotoColorEmoji.ttf",  # Arch
              "/usr/share/fonts/google-noto-color-emoji-fonts/NotoColorEmoji.ttf")  # Fedora
TEST_PATHS = ("/usr/share/unicode/emoji/emoji-test.txt", "/usr/share/unicode-data/emoji/emoji-test.txt")
INSTALL = "apt-get install fonts-noto-color-emoji unicode-data"
NATIVE_SIZE = 109  # the font's one bitmap strike (ppem); FreeType refuses any other size for it
NATIVE_PIXELS = 136  # its bitmaps are 136 x 128; a larger image_size would only upsample
DEFAULT_IMAGE_SIZE = 32
CLASS_MODES = ("group", "subgroup")
SKIPPED_GROUPS = ("Component",)  # skin-tone and hair swatches: colour patches, not pictures
BACKGROUND = (255, 255, 255)  # white: see the module docstring
FORMAT_VERSION = 1  # bump when rendering changes, so old caches are not reused
LINE = re.compile(r"^\s*([0-9A-Fa-f]{4,6}(?:\s+[0-9A-Fa-f]{4,6})*)\s*;\s*([a-z-]+)\s*#\s*\S+\s+(?:E\d+\.\d+\s+)?(.+?)\s*$")


@dataclass(frozen=True)
class Emoji:
    """One line of emoji-test.txt: the characters, where Unicode files it and its English name."""

    text: str
    group: str
    subgroup: str
    name: str

    def class_name(self, classes: str) -> str:
        """Readable class: "smileys & emotion" for the group, "face smiling" for the subgroup."""
        return self.group.lower() if classes == "group" else self.subgroup.replace("-", " ")


def parse_emoji_test(text: str, source: str = "emoji-test.txt") -> list[Emoji]:
    """The fully-qualified emoji of an emoji-test.txt, in file order, without the skipped groups."""
    group = subgroup = None
    emojis = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line.strip() and not line.lstrip().startswith("#"):
            match = LINE.match(line)
            if match is None:
                raise UserError(f"{source} line {number} is not 'CODEPOINTS ; status # emoji name': {line[:60]!r}; "
                                f"fix: use Unicode's file ({INSTALL})")
            codes, status, name = match.groups()
            if status != "fully-qualified" or group in SKIPPED_GROUPS:
                continue
            if group is None or subgroup is None:
                raise UserError(f"{source} line {number}: an emoji before any '# group:' and '# subgroup:' line; "
                                f"fix: use Unicode's file ({INSTALL})")
            emojis.append(Emoji("".join(chr(int(c, 16)) for c in codes.split()), group, subgroup, name))
    if not emojis:
        raise UserError(f"{source} lists no fully-qualified emoji; fix: use Unicode's file ({INSTALL})")
    return emojis


def parse_spec(spec: str) -> tuple[str, int | None]:
    """`"emoji:subgroup:40"` → `("subgroup", 40)`; `"emoji"` → `("group", None)`."""
    usage = "use emoji, emoji:subgroup, emoji:N or emoji:subgroup:N (N = at most N emoji per class)"
    head, *options = spec.split(":")
    classes = options.pop(0) if options and options[0] in CLASS_MODES else "group"
    limit = int(options.pop(0)) if options and re.fullmatch(r"[1-9][0-9]*", options[0]) else None
    if head != "emoji" or options:
        raise UserError(f"dataset {spec!r} not understood; {usage}")
    return classes, limit


def load_emoji(*, image_size: int | None = None, classes: str = "group", limit: int | None = None) -> ImageDataset:
    """All emoji as `(N, 3, S, S)` in [-1, 1] on white, one caption each; rendered once, then cached."""
    size = DEFAULT_IMAGE_SIZE if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= NATIVE_PIXELS:
        raise UserError(f"emoji image_size must be an integer in 1..{NATIVE_PIXELS} (the font's bitmaps are "
                        f"{NATIVE_PIXELS} px wide), got {image_size!r}; fix: use 32 or 64")
    if classes not in CLASS_MODES:
        raise UserError(f"emoji classes must be one of {', '.join(CLASS_MODES)}, got {classes!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise UserError(f"emoji limit must be a positive number of emoji per class, got {limit!r}")
    font_path, test_path = _find("DIFFLAB_EMOJI_FONT", FONT_PATHS), _find("DIFFLAB_EMOJI_TEST", TEST_PATHS)
    test_bytes = test_path.read_bytes()
    key = _fingerprint(font_path, test_bytes, size, classes, limit)
    path = cache_dir("datasets", "emoji") / f"emoji-{size}px-{classes}-{key[:16]}.npz"
    arrays = _read_cache(path)
    if arrays is None:
        emojis = parse_emoji_test(test_bytes.decode("utf-8", errors="replace"), str(test_path))
        arrays = _render_all(_select(emojis, classes, limit), classes, _open_font(font_path), size)
        _write_cache(path, arrays)
        print(f"emoji: {len(arrays['labels'])} images rendered once, cached in {path}", flush=True)
    return from_uint8(arrays["images"], arrays["labels"], [str(c) for c in arrays["class_names"]], "emoji",
                      [str(c) for c in arrays["captions"]])


def load_emoji_spec(spec: str, *, image_size: int | None = None) -> ImageDataset:
    """`load_emoji` from a spec string (see the module docstring)."""
    classes, limit = parse_spec(spec)
    return load_emoji(image_size=image_size, classes=classes, limit=limit)


def render(font: ImageFont.FreeTypeFont, text: str, size: int) -> np.ndarray | None:
    """`(size, size, 3)` uint8 of one emoji on white, or None when the font has no single glyph for it."""
    left, top, right, bottom = font.getbbox(text)  # the layout box: (0, 0, 136, 128) for one glyph
    width, height = right - left, bottom - top
    if width <= 0 or height <= 0 or width > 1.5 * height:
        return None  # nothing, or several glyphs side by side: the font lacks this sequence
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), BACKGROUND)
    corner = ((side - width) // 2 - left, (side - height) // 2 - top)
    ImageDraw.Draw(canvas).text(corner, text, font=font, embedded_color=True)  # straight alpha over white
    if all(low == 255 for low, _ in canvas.getextrema()):
        return None  # blank: no bitmap for this character
    return np.asarray(canvas.resize((size, size), Image.Resampling.LANCZOS))


def _select(emojis: list[Emoji], classes: str, limit: int | None) -> list[Emoji]:
    """At most `limit` per class, evenly spaced in file order (so a sample spans every subgroup)."""
    if limit is None:
        return emojis
    chosen = []
    for name in dict.fromkeys(e.class_name(classes) for e in emojis):
        members = [e for e in emojis if e.class_name(classes) == name]
        picks = np.unique(np.linspace(0, len(members) - 1, min(limit, len(members))).round().astype(int))
        chosen += [members[i] for i in picks]
    order = {e: i for i, e in enumerate(emojis)}
    return sorted(chosen, key=order.__getitem__)


def _render_all(emojis: list[Emoji], classes: str, font: ImageFont.FreeTypeFont, size: int) -> dict[str, np.ndarray]:
    """Render every emoji once (skipping what the font lacks); classes are numbered in file order."""
    joins = _has_raqm()
    if not joins:
        print("emoji: Pillow's raqm text layout is missing, so flags, skin tones and ZWJ sequences are skipped; "
              "fix: apt-get install libfribidi0 (raqm loads it)", file=sys.stderr, flush=True)
    images, names, captions = [], [], []
    with progress.bar(len(emojis), "rendering emoji (once; cached)", unit="glyph") as shown:
        for emoji in emojis:
            text = emoji.text if joins else emoji.text.replace("\uFE0F", "")  # basic layout draws VS16 as a glyph
            pixels = render(font, text, size)
            if pixels is not None:
                images.append(pixels)
                names.append(emoji.class_name(classes))
                captions.append(emoji.name)
            shown.update()
    if not images:
        raise UserError(f"the emoji font drew none of {len(emojis)} emoji; fix: {INSTALL} (or point "
                        "DIFFLAB_EMOJI_FONT at NotoColorEmoji.ttf)")
    class_names = list(dict.fromkeys(names))
    return {"images": np.stack(images),  # (N, S, S, 3) uint8
            "labels": np.array([class_names.index(n) for n in names], dtype=np.int64),
            "class_names": np.array(class_names), "captions": np.array(captions)}


def _find(variable: str, candidates: tuple[str, ...]) -> Path:
    """The file named by `$variable`, else the first of `candidates` that exists."""
    override = os.environ.get(variable)
    if override:
        if not Path(override).is_file():
            raise UserError(f"{variable}={override}: no such file; fix: point it at the file or unset it")
        return Path(override)
    for candidate in candidates:
        if Path(candidate).is_file():
            return Path(candidate)
    raise UserError(f"{Path(candidates[0]).name} not found (looked in {Path(candidates[0]).parent}); fix: {INSTALL} "
                    f"(or set {variable}=PATH)")


def _has_raqm() -> bool:
    """Whether Pillow lays text out with raqm: only then are flags, skin tones and ZWJ sequences one glyph."""
    return bool(features.check("raqm"))


def _open_font(path: Path) -> ImageFont.FreeTypeFont:
    try:
        engine = ImageFont.Layout.RAQM if _has_raqm() else ImageFont.Layout.BASIC
        return ImageFont.truetype(str(path), size=NATIVE_SIZE, layout_engine=engine)
    except OSError as err:
        raise UserError(f"{path}: not a colour emoji font with a {NATIVE_SIZE} px strike ({err}); fix: {INSTALL} "
                        "and use its NotoColorEmoji.ttf") from None


def _fingerprint(font_path: Path, test_bytes: bytes, size: int, classes: str, limit: int | None) -> str:
    """sha256 over both files' contents and every setting that changes the pixels (Pillow and its text
    layout engine included: raqm joins ZWJ sequences into one glyph, the basic layout does not)."""
    stat = font_path.stat()
    font = _sha256(str(font_path), stat.st_size, stat.st_mtime_ns)
    settings = {"version": FORMAT_VERSION, "font": font, "test": hashlib.sha256(test_bytes).hexdigest(),
                "size": size, "classes": classes, "limit": limit, "pillow": PIL.__version__,
                "raqm": _has_raqm(), "background": BACKGROUND}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


@functools.lru_cache(maxsize=4)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    """The font's digest, once per process while its size and time are unchanged (11 MB: ~30 ms)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when there are none or they are damaged (then they are rendered again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {k: stored[k] for k in ("images", "labels", "class_names", "captions")}
        n = len(arrays["images"])
        if arrays["images"].dtype != np.uint8 or arrays["images"].ndim != 4 or len(arrays["labels"]) != n \
                or len(arrays["captions"]) != n or not n or arrays["labels"].max() >= len(arrays["class_names"]):
            raise ValueError("arrays of mismatched shapes")
        return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        print(f"emoji: cache file {path} is damaged ({type(err).__name__}); rendering again", file=sys.stderr, flush=True)
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # mostly white: ~4x smaller than raw
    atomic_write_bytes(path, buffer.getvalue())

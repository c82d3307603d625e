"""MNIST-family datasets stored as IDX files: MNIST, Fashion-MNIST, KMNIST and EMNIST.

The IDX format is a 4-byte magic (two zero bytes, a data-type code, the number of dimensions), one
big-endian uint32 per dimension, then the raw values. We parse it ourselves (no torchvision) and check
every field against the file length, because the usual failure is a truncated or half-downloaded
file, and that must read as a one-line `UserError` naming the file, not as a numpy reshape error.

Files are looked for, in order, in `data_dir`, `data_dir/<name>/`, the cache
(`cache_dir("datasets", name)`) and system packages (Debian's `dataset-fashion-mnist` installs
`/usr/share/datasets/fashion-mnist/`); each may be gzipped or raw. Missing files are downloaded into
the cache, except EMNIST, which upstream ships only inside one large zip: that one is local-only.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from difflab.data.dataset import ImageDataset, from_uint8
from difflab.data.download import DownloadError
from difflab.data.download import download as fetch_url
from difflab.errors import UserError
from difflab.paths import cache_dir

DIGITS = tuple("0123456789")
CLASS_NAMES = {
    "mnist": DIGITS,
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    "emnist-digits": DIGITS,
    "emnist-letters": tuple("abcdefghijklmnopqrstuvwxyz"),  # upper and lower case merged
}
MIRRORS = {  # override with $DIFFLAB_MIRROR_<NAME>, e.g. DIFFLAB_MIRROR_FASHION_MNIST
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "kmnist": "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
}
MD5 = {  # of the official .gz files; checked only when downloading from the official mirror
    "mnist": {
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "kmnist": {
        "train-images-idx3-ubyte": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte": "7320c461ea6c1c855c0b718fb2a4b134",
    },
}
FASHION_DEBIAN = Path("/usr/share/datasets/fashion-mnist")  # where `apt-get install dataset-fashion-mnist` puts it
SYSTEM_DIRS = {"fashion-mnist": (FASHION_DEBIAN,)}
EMNIST_ZIP_URL = "https://biometrics.nist.gov/cs_links/EMNIST/gzip.zip"
IDX_DTYPES = {0x08: np.uint8}  # the only type the MNIST family uses
FIX_DAMAGED = "fix: delete it (difflab downloads it again) or replace it with a good copy"


def load_idx_dataset(name: str, *, split: str, data_dir: str | Path | None, download: bool) -> ImageDataset:
    """The official `split` ("train" or "test") of `name`, images `(N, 1, 28, 28)` in [-1, 1]."""
    if name not in CLASS_NAMES:
        raise UserError(f"unknown IDX dataset {name!r}; use one of {', '.join(CLASS_NAMES)}")
    if split not in ("train", "test"):
        raise UserError(f"unknown split {split!r}; use train or test")
    stems = _file_stems(name, split)
    dirs = _search_dirs(name, data_dir)
    found = _find_pair(dirs, stems) or _fetch(name, stems, dirs, download)
    images_path, labels_path = found
    images, labels = read_idx(images_path), read_idx(labels_path)  # (N, H, W), (N,)
    if images.ndim != 3 or labels.ndim != 1:
        raise UserError(f"{images_path} / {labels_path}: expected images (N, H, W) and labels (N,), found "
                        f"shapes {images.shape} and {labels.shape}; fix: check the files are not swapped")
    if len(images) != len(labels):
        raise UserError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} "
                        "labels; fix: use the images and labels files of the same split and release")
    if name.startswith("emnist"):
        images = images.transpose(0, 2, 1)  # EMNIST stores each image transposed
    first = 1 if name == "emnist-letters" else 0  # letters are labelled 1..26
    _check_labels(labels, first, first + len(CLASS_NAMES[name]) - 1, labels_path)
    return from_uint8(np.ascontiguousarray(images), labels.astype(np.int64) - first, CLASS_NAMES[name],
                      f"{name}-{split}")


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (gzipped or raw) into an array of its declared shape, checking every field."""
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise UserError(f"{path}: not an IDX file (starts with {bytes(raw[:4]).hex() or 'nothing'}, expected "
                        f"0000 then type and rank); {FIX_DAMAGED}")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code not in IDX_DTYPES:
        raise UserError(f"{path}: IDX data type 0x{dtype_code:02X} is not supported (only 0x08, unsigned "
                        "bytes, as in the MNIST family); fix: convert the file to uint8")
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise UserError(f"{path}: IDX header declares {ndim} dimensions but the file is {len(raw)} bytes; "
                        f"{FIX_DAMAGED}")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected, body = math.prod(dims), len(raw) - header
    if body < expected:
        raise UserError(f"{path}: truncated: shape {dims} needs {expected} bytes of data, the file holds "
                        f"{body} (interrupted download or copy?); {FIX_DAMAGED}")
    if body > expected:
        raise UserError(f"{path}: {body - expected} extra bytes after the {expected} bytes of shape {dims}; "
                        f"{FIX_DAMAGED}")
    return np.frombuffer(raw, dtype=IDX_DTYPES[dtype_code], offset=header).reshape(dims)


def _read_bytes(path: Path) -> bytearray:
    """The file's content, gunzipped when it starts with the gzip magic (whatever its suffix)."""
    try:
        with path.open("rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            if not gzipped:
                return bytearray(f.read())
            with gzip.GzipFile(fileobj=f) as z:
                return bytearray(z.read())
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise UserError(f"{path}: damaged gzip file ({str(err) or type(err).__name__}); {FIX_DAMAGED}") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err}); fix: check the path and its "
                        "permissions") from None


def _check_labels(labels: np.ndarray, low: int, high: int, path: Path) -> None:
    if len(labels) and (int(labels.min()) < low or int(labels.max()) > high):
        raise UserError(f"{path}: labels must lie in {low}..{high}, found {int(labels.min())}.."
                        f"{int(labels.max())}; fix: use the labels file of this dataset")


def _file_stems(name: str, split: str) -> tuple[str, str]:
    """Images and labels file names without ".gz", e.g. t10k-images-idx3-ubyte."""
    if name.startswith("emnist-"):
        prefix = f"{name}-{'train' if split == 'train' else 'test'}"  # emnist-digits-train
    else:
        prefix = "train" if split == "train" else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _search_dirs(name: str, data_dir: str | Path | None) -> list[Path]:
    dirs: list[Path] = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        dirs += [root, root / name]
        if name.startswith("emnist-"):
            dirs.append(root / "gzip")  # the folder inside EMNIST's gzip.zip
    return [*dirs, cache_dir("datasets", name), *SYSTEM_DIRS.get(name, ())]


def _find(directory: Path, stem: str) -> Path | None:
    """`stem` or `stem.gz`; also the `train-images.idx3-ubyte` spelling some re-packagers use."""
    dotted = stem.replace("-idx", ".idx")
    for candidate in (stem, f"{stem}.gz", dotted, f"{dotted}.gz"):
        if (directory / candidate).is_file():
            return directory / candidate
    return None


def _find_pair(dirs: list[Path], stems: tuple[str, str]) -> tuple[Path, Path] | None:
    """The first directory holding both files, so images and labels always come from one release."""
    for directory in dirs:
        images, labels = _find(directory, stems[0]), _find(directory, stems[1])
        if images and labels:
            return images, labels
    return None


def _fetch(name: str, stems: tuple[str, str], dirs: list[Path], download: bool) -> tuple[Path, Path]:
    """Download the missing files into the cache, or explain what to do instead."""
    where = ", ".join(str(d) for d in dirs)
    wanted = f"{stems[0]}[.gz] and {stems[1]}[.gz]"
    if name.startswith("emnist-"):
        raise UserError(f"{name}: {wanted} not found in {where}; EMNIST is not downloaded automatically (one "
                        f"large zip); fix: unzip {EMNIST_ZIP_URL} and pass --data-dir DIR pointing at its "
                        "gzip/ folder, or use --dataset mnist5k (works offline)")
    if not download:
        raise UserError(f"{name}: {wanted} not found in {where} and downloading is off; fix: pass --data-dir "
                        "DIR holding the IDX files, allow downloads, or use --dataset mnist5k (works offline)")
    env = f"DIFFLAB_MIRROR_{name.upper().replace('-', '_')}"
    base = os.environ.get(env) or MIRRORS[name]
    checksums = MD5[name] if base == MIRRORS[name] else {}  # another mirror may recompress the files
    cache = cache_dir("datasets", name)
    try:
        for stem in stems:
            if _find(cache, stem) is None:
                fetch_url(f"{base.rstrip('/')}/{stem}.gz", cache / f"{stem}.gz", expected_md5=checksums.get(stem))
    except DownloadError as err:
        debian = ("`apt-get install dataset-fashion-mnist` (Debian/Ubuntu: offline, into "
                  f"{FASHION_DEBIAN}), " if name == "fashion-mnist" else "")
        raise UserError(f"{name}: files not found in {where} and download failed ({err.reason}); fix: {debian}use "
                        "--dataset mnist5k (works offline) or pass --data-dir DIR holding the IDX files") from None
    return _find(cache, stems[0]), _find(cache, stems[1])  # type: ignore[return-value]

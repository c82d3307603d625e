"""CIFAR-10 from its official "python version": pickled batches in `cifar-10-batches-py/`.

The batches are pickles, and `pickle.load` runs whatever code a file names, so a tampered download
(or a file a user was handed) could execute anything. We unpickle with `_BatchUnpickler`, which can
build only what a genuine batch holds (dicts, lists, bytes, ints and numpy uint8 arrays) and refuses
every other global. The archive is extracted with tarfile's "data" filter (no absolute paths, no
`..`, no links out of the target, no device files).
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np

from difflab.data.dataset import ImageDataset, from_uint8
from difflab.data.download import DownloadError
from difflab.data.download import download as fetch_url
from difflab.errors import UserError
from difflab.paths import cache_dir

ARCHIVE = "cifar-10-python.tar.gz"
ARCHIVE_URL = f"https://www.cs.toronto.edu/~kriz/{ARCHIVE}"  # override: $DIFFLAB_MIRROR_CIFAR10
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"  # checked only for the official URL
FOLDER = "cifar-10-batches-py"
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
META = "batches.meta"
NUM_CLASSES = 10
PIXELS = 3 * 32 * 32  # one row of a batch: 1024 red, then 1024 green, then 1024 blue values
FIX_DAMAGED = "fix: delete it (difflab downloads CIFAR-10 again) or restore it from the official archive"


def load_cifar10(*, split: str, data_dir: str | Path | None, download: bool) -> ImageDataset:
    """The official `split` ("train": 50,000, "test": 10,000), images `(N, 3, 32, 32)` in [-1, 1]."""
    if split not in ("train", "test"):
        raise UserError(f"unknown split {split!r}; use train or test")
    names = BATCHES[split]
    dirs = _search_dirs(data_dir)
    folder = next((d for d in dirs if all((d / n).is_file() for n in (*names, META))), None)
    if folder is None:
        folder = _fetch(dirs, download)
    class_names = _read_meta(folder / META)
    batches = [_read_batch(folder / name) for name in names]
    data = np.concatenate([b[0] for b in batches])  # (N, 3072)
    labels = np.concatenate([b[1] for b in batches])  # (N,)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # (N, 32, 32, 3)
    return from_uint8(images, labels, class_names, f"cifar10-{split}")


class _RefusedGlobal(pickle.UnpicklingError):
    pass


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


_ALLOWED_GLOBALS = {  # all a pickled numpy array needs (protocols 0-4; CIFAR-10 was written with 2)
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,  # as numpy 1.x writes it
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,  # as numpy 2.x writes it
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the numpy array globals above and refuses every other."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]()
        raise _RefusedGlobal(f"{module}.{name}")


def _unpickle(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            obj = _BatchUnpickler(f, encoding="bytes").load()
    except _RefusedGlobal as err:
        raise UserError(f"{path}: refused to unpickle: it references {err}, which a CIFAR-10 batch never "
                        f"does (tampered file, or not CIFAR-10); {FIX_DAMAGED}") from None
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err}); fix: check its permissions") from None
    except Exception as err:
        raise UserError(f"{path}: not a valid CIFAR-10 batch ({type(err).__name__}: {err}); "
                        f"{FIX_DAMAGED}") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: a CIFAR-10 batch is a dict, found {type(obj).__name__}; {FIX_DAMAGED}")
    return obj


def _field(batch: dict, key: str):
    """`batch[key]`: keys are bytes in the official (Python 2) files, str in re-pickled ones."""
    return batch.get(key.encode(), batch.get(key))


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`(data (N, 3072) uint8, labels (N,) int64)` of one batch file, with shapes and range checked."""
    batch = _unpickle(path)
    data, labels = _field(batch, "data"), _field(batch, "labels")
    is_array = isinstance(data, np.ndarray)
    if not (is_array and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == PIXELS):
        found = f"{data.dtype} array {data.shape}" if is_array else type(data).__name__
        raise UserError(f"{path}: 'data' must be a (N, {PIXELS}) uint8 array, found {found}; {FIX_DAMAGED}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise UserError(f"{path}: 'labels' must be a list of integers, found {type(labels).__name__}; "
                        f"{FIX_DAMAGED}") from None
    if labels.shape != (len(data),):
        raise UserError(f"{path}: {len(data)} images but 'labels' of shape {labels.shape}; {FIX_DAMAGED}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise UserError(f"{path}: labels must lie in 0..9, found {labels.min()}..{labels.max()}; {FIX_DAMAGED}")
    return data, labels


def _read_meta(path: Path) -> tuple[str, ...]:
    names = _field(_unpickle(path), "label_names")
    valid = isinstance(names, list) and len(names) == NUM_CLASSES
    if not (valid and all(isinstance(n, (bytes, str)) for n in names)):
        raise UserError(f"{path}: 'label_names' must list {NUM_CLASSES} names; {FIX_DAMAGED}")
    return tuple(n.decode("ascii", "replace") if isinstance(n, bytes) else n for n in names)


def _search_dirs(data_dir: str | Path | None) -> list[Path]:
    dirs = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        dirs += [root / FOLDER, root, root / "cifar10" / FOLDER]
    return [*dirs, cache_dir("datasets", "cifar10") / FOLDER]


def _fetch(dirs: list[Path], download: bool) -> Path:
    """Download and extract the archive into the cache; return the batches folder."""
    where = ", ".join(str(d) for d in dirs)
    if not download:
        raise UserError(f"cifar10: batches not found in {where} and downloading is off; fix: pass --data-dir DIR "
                        f"holding {FOLDER}/, allow downloads, or use --dataset mnist5k (works offline)")
    cache = cache_dir("datasets", "cifar10")
    base = os.environ.get("DIFFLAB_MIRROR_CIFAR10")
    url = f"{base.rstrip('/')}/{ARCHIVE}" if base else ARCHIVE_URL
    archive = cache / ARCHIVE
    try:
        if not archive.is_file():
            fetch_url(url, archive, expected_md5=None if base else ARCHIVE_MD5)
    except DownloadError as err:
        raise UserError(f"cifar10: batches not found in {where} and download failed ({err.reason}); fix: use "
                        f"--dataset mnist5k (works offline) or pass --data-dir DIR holding {FOLDER}/") from None
    folder = _extract(archive, cache)
    archive.unlink()  # 163 MB we no longer need
    return folder


def _extract(archive: Path, cache: Path) -> Path:
    """Extract safely into a scratch folder, then move `cifar-10-batches-py/` into place at once."""
    if not hasattr(tarfile, "data_filter"):
        raise UserError(f"Python {sys.version.split()[0]} lacks safe tar extraction (needs 3.10.12+ or 3.11.4+); "
                        f"fix: upgrade Python, or extract {archive} yourself and pass --data-dir DIR")
    scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=cache))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(scratch, filter="data")
        if not (scratch / FOLDER).is_dir():
            raise UserError(f"{archive}: holds no {FOLDER}/ folder; fix: delete it and download it again")
        target = cache / FOLDER
        shutil.rmtree(target, ignore_errors=True)
        os.replace(scratch / FOLDER, target)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise UserError(f"{archive}: cannot extract ({err}); fix: delete it and download it again") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target

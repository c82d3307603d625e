"""CIFAR-10: fake batches load, bad ones are refused, and no pickle can run code."""

from __future__ import annotations

import io
import os
import pickle
import shlex
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from difflab.data import load_dataset
from difflab.errors import UserError

NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


class _Py2StylePickler(pickle._Pickler):
    """Protocol 2 with bytes as BINSTRING, as Python 2's cPickle wrote the official batches."""

    def save_bytes(self, obj):
        head = pickle.SHORT_BINSTRING + bytes([len(obj)]) if len(obj) < 256 else pickle.BINSTRING + struct.pack(
            "<i", len(obj))
        self.write(head + obj)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_bytes}  # noqa: RUF012 - pickle reads it from the class


def _py2_pickle(obj) -> bytes:
    out = io.BytesIO()
    _Py2StylePickler(out, protocol=2).dump(obj)
    return out.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")  # numpy 1.x name


def _batch(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"fake", b"labels": [int(v) for v in np.arange(n) % 10],
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}


def _write_batches(folder: Path, py2: bool = False) -> dict[str, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    dump = _py2_pickle if py2 else (lambda obj: pickle.dumps(obj, protocol=4))
    batches = {f"data_batch_{i}": _batch(3, i) for i in range(1, 6)} | {"test_batch": _batch(4, 9)}
    for name, batch in batches.items():
        (folder / name).write_bytes(dump(batch))
    (folder / "batches.meta").write_bytes(dump({b"label_names": NAMES, b"num_cases_per_batch": 3}))
    return batches


@pytest.mark.parametrize("py2", [False, True])
def test_fake_batches_load(tmp_path, py2):
    batches = _write_batches(tmp_path / "cifar-10-batches-py", py2=py2)
    train = load_dataset("cifar10", split="train", data_dir=tmp_path, download=False)
    test = load_dataset("cifar10", split="test", data_dir=tmp_path, download=False)
    assert train.images.shape == (15, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    assert train.class_names[1] == "automobile" and test.labels.tolist() == [0, 1, 2, 3]
    row = batches["data_batch_2"][b"data"][0]  # train image 3: 1024 red, 1024 green, 1024 blue
    expected = row.reshape(3, 32, 32).astype(np.float32) / 127.5 - 1.0
    assert np.allclose(train.images[3].numpy(), expected)


@pytest.mark.parametrize(("field", "value", "words"), [
    (b"data", np.zeros((3, 100), np.uint8), "(N, 3072) uint8"),
    (b"data", np.zeros((3, 3072), np.float32), "(N, 3072) uint8"),
    (b"labels", [0, 1], "3 images but 'labels'"),
    (b"labels", [0, 1, 12], "0..9"),
])
def test_bad_batch_is_named(tmp_path, field, value, words):
    _write_batches(tmp_path)
    bad = _batch(3, 0) | {field: value}
    (tmp_path / "data_batch_4").write_bytes(pickle.dumps(bad, protocol=4))
    with pytest.raises(UserError) as err:
        load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert str(tmp_path / "data_batch_4") in str(err.value) and words in str(err.value)


def test_not_a_pickle(tmp_path):
    _write_batches(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"this is not a pickle")
    with pytest.raises(UserError, match="test_batch: not a valid CIFAR-10 batch"):
        load_dataset("cifar10", split="test", data_dir=tmp_path, download=False)


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_malicious_pickle_is_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    _write_batches(tmp_path)
    (tmp_path / "test_batch").write_bytes(pickle.dumps(_Payload(marker), protocol=protocol))
    with pytest.raises(UserError, match=r"test_batch: refused to unpickle: it references (posix|nt|os)\.system"):
        load_dataset("cifar10", split="test", data_dir=tmp_path, download=False)
    assert not marker.exists()


def _tarball(path: Path, source: Path, extra: tuple[str, bytes] | None = None) -> None:
    with tarfile.open(path, "w:gz") as tar:
        tar.add(source, arcname="cifar-10-batches-py")
        if extra:
            info = tarfile.TarInfo(extra[0])
            info.size = len(extra[1])
            tar.addfile(info, io.BytesIO(extra[1]))


def test_download_and_extract(tmp_path, http_dir, cache, monkeypatch):
    base, served = http_dir
    _write_batches(tmp_path / "src")
    _tarball(served / "cifar-10-python.tar.gz", tmp_path / "src")
    monkeypatch.setenv("DIFFLAB_MIRROR_CIFAR10", base)
    ds = load_dataset("cifar10", split="test")
    assert ds.images.shape == (4, 3, 32, 32)
    assert sorted(p.name for p in (cache / "datasets" / "cifar10").iterdir()) == ["cifar-10-batches-py"]


def test_archive_escaping_its_folder_is_refused(tmp_path, http_dir, cache, monkeypatch):
    base, served = http_dir
    _write_batches(tmp_path / "src")
    _tarball(served / "cifar-10-python.tar.gz", tmp_path / "src", extra=("../../escaped.txt", b"x"))
    monkeypatch.setenv("DIFFLAB_MIRROR_CIFAR10", base)
    with pytest.raises(UserError, match="cifar-10-python.tar.gz: cannot extract"):
        load_dataset("cifar10", split="test")
    assert not list(tmp_path.rglob("escaped.txt"))


def test_download_failure(http_dir, monkeypatch):
    monkeypatch.setenv("DIFFLAB_MIRROR_CIFAR10", http_dir[0])  # serves nothing: 404
    with pytest.raises(UserError, match=r"cifar10: .*download failed \(HTTP 404.*mnist5k.*--data-dir"):
        load_dataset("cifar10", split="test")

"""IDX datasets: parsing, validation with one-line errors, search order, download via a mirror."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from difflab.data import load_dataset
from difflab.data.idx import CLASS_NAMES, read_idx
from difflab.errors import UserError

FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


def _write_split(write_idx, directory: Path, prefix: str, images, labels, gz: bool) -> tuple[Path, Path]:
    suffix = ".gz" if gz else ""
    return (write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images),
            write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels))


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(write_idx, tiny_split, tmp_path, gz):
    images, labels = tiny_split(5)
    path = write_idx(tmp_path / ("x.gz" if gz else "x"), images)
    assert np.array_equal(read_idx(path), images)
    assert np.array_equal(read_idx(write_idx(tmp_path / "y", labels)), labels)


def test_mnist_raw_train_and_gzip_test_from_data_dir(write_idx, tiny_split, tmp_path):
    train_x, train_y = tiny_split(12, seed=1)
    test_x, test_y = tiny_split(7, seed=2)
    _write_split(write_idx, tmp_path / "data", "train", train_x, train_y, gz=False)
    _write_split(write_idx, tmp_path / "data" / "mnist", "t10k", test_x, test_y, gz=True)  # data_dir/<name>/
    train = load_dataset("mnist", split="train", data_dir=tmp_path / "data", download=False)
    test = load_dataset("mnist", split="test", data_dir=tmp_path / "data", download=False)
    assert train.images.shape == (12, 1, 28, 28) and test.images.shape == (7, 1, 28, 28)
    assert train.labels.tolist() == train_y.tolist() and train.class_names == tuple("0123456789")
    expected = train_x[3].astype(np.float32) / 127.5 - 1.0
    assert np.allclose(train.images[3, 0].numpy(), expected)


def test_emnist_letters_transposed_and_relabelled(write_idx, tiny_split, tmp_path):
    images, _ = tiny_split(3)
    labels = np.array([1, 26, 3], dtype=np.uint8)
    _write_split(write_idx, tmp_path / "gzip", "emnist-letters-test", images, labels, gz=True)
    ds = load_dataset("emnist-letters", split="test", data_dir=tmp_path, download=False)
    assert ds.labels.tolist() == [0, 25, 2] and ds.class_names[25] == "z"
    assert np.allclose(ds.images[1, 0].numpy(), images[1].T.astype(np.float32) / 127.5 - 1.0)


def test_emnist_missing_explains_local_only(tmp_path):
    with pytest.raises(UserError, match=r"EMNIST is not downloaded automatically.*gzip\.zip.*--data-dir"):
        load_dataset("emnist-digits", data_dir=tmp_path)


def _assert_names(err, path: Path) -> str:
    message = str(err.value)
    assert str(path) in message and "\n" not in message and "fix:" in message
    return message


def test_truncated_and_extra_bytes(write_idx, tiny_split, tmp_path):
    images, _ = tiny_split(4)
    path = write_idx(tmp_path / "train-images-idx3-ubyte", images)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError) as err:
        read_idx(path)
    assert "truncated" in _assert_names(err, path)
    path.write_bytes(path.read_bytes() + b"\0" * 150)
    with pytest.raises(UserError) as err:
        read_idx(path)
    assert "50 extra bytes" in _assert_names(err, path)


@pytest.mark.parametrize(("content", "words"), [
    (b"\x89PNG\r\n\x1a\n....", "not an IDX file"),
    (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\0" * 4, "0x0D is not supported"),
    (bytes([0, 0, 0x08, 3, 0, 0]), "declares 3 dimensions"),
    (b"", "not an IDX file"),
])
def test_bad_header(tmp_path, content, words):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(UserError) as err:
        read_idx(path)
    assert words in _assert_names(err, path)


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_damaged_gzip(write_idx, tiny_split, tmp_path, damage):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", tiny_split(4)[0])
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[20:60] = bytes(40)
    path.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        read_idx(path)
    assert "damaged gzip" in _assert_names(err, path)


def test_count_mismatch_names_both_files(write_idx, tiny_split, tmp_path):
    images, labels = tiny_split(6)
    x, y = _write_split(write_idx, tmp_path, "train", images, labels[:5], gz=False)
    with pytest.raises(UserError) as err:
        load_dataset("mnist", data_dir=tmp_path, download=False)
    assert "6 images" in _assert_names(err, x) and str(y) in str(err.value)


def test_label_out_of_range(write_idx, tiny_split, tmp_path):
    images, labels = tiny_split(4)
    labels[2] = 10
    _, y = _write_split(write_idx, tmp_path, "train", images, labels, gz=True)
    with pytest.raises(UserError) as err:
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
    assert "0..9" in _assert_names(err, y)


def test_missing_without_download(tmp_path):
    with pytest.raises(UserError, match=r"kmnist: .*not found.*--data-dir.*mnist5k"):
        load_dataset("kmnist", data_dir=tmp_path, download=False)


def test_download_from_mirror_into_cache(write_idx, tiny_split, http_dir, cache, monkeypatch):
    base, served = http_dir
    images, labels = tiny_split(9)
    _write_split(write_idx, served, "t10k", images, labels, gz=True)
    monkeypatch.setenv("DIFFLAB_MIRROR_KMNIST", base + "/")
    ds = load_dataset("kmnist", split="test")
    assert ds.images.shape == (9, 1, 28, 28) and ds.class_names == CLASS_NAMES["kmnist"]
    cached = sorted(p.name for p in (cache / "datasets" / "kmnist").iterdir())
    assert cached == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for p in served.iterdir():
        p.unlink()
    assert load_dataset("kmnist", split="test").labels.tolist() == labels.tolist()  # from the cache now


@pytest.mark.parametrize("server", ["404", "closed-port"])
def test_download_failure_is_one_line(http_dir, monkeypatch, server):
    base, _ = http_dir
    if server == "closed-port":
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("DIFFLAB_MIRROR_MNIST", base)
    with pytest.raises(UserError) as err:
        load_dataset("mnist", split="test")
    message = str(err.value)
    assert message.startswith("mnist: files not found in ") and "download failed (" in message
    assert "--dataset mnist5k (works offline)" in message and "--data-dir DIR" in message
    assert "\n" not in message and ("404" in message if server == "404" else True)


def test_fashion_mnist_not_found_names_the_debian_package(http_dir, monkeypatch):
    """Offline and without the Debian package, the fix names the package that puts the files in place."""
    monkeypatch.setenv("DIFFLAB_MIRROR_FASHION_MNIST", http_dir[0] + "/nothing-here")
    monkeypatch.setattr("difflab.data.idx.SYSTEM_DIRS", {"fashion-mnist": ()})
    with pytest.raises(UserError) as err:
        load_dataset("fashion-mnist", split="test")
    message = str(err.value)
    assert "download failed (" in message and "`apt-get install dataset-fashion-mnist`" in message
    assert "--dataset mnist5k" in message and "\n" not in message


@pytest.mark.skipif(not FASHION_SYSTEM_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_from_debian_package():
    ds = load_dataset("fashion-mnist", split="test", download=False)
    assert ds.images.shape == (10000, 1, 28, 28) and ds.class_names[9] == "Ankle boot"
    assert ds.labels[:5].tolist() == [9, 2, 1, 1, 6]  # the first five test labels of Fashion-MNIST
    assert np.bincount(ds.labels.numpy()).tolist() == [1000] * 10


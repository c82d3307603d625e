"""`download`: atomic, checksummed, and every network failure is a one-line `UserError`."""

from __future__ import annotations

import hashlib
import socket

import pytest

from difflab.data.download import DownloadError, download
from difflab.errors import UserError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_writes_file_and_shows_progress(http_dir, tmp_path, capsys):
    base, served = http_dir
    payload = bytes(range(256)) * 1000  # 256 kB: several chunks
    (served / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "blob.bin"
    md5 = hashlib.md5(payload).hexdigest()
    assert download(f"{base}/blob.bin", dest, expected_md5=md5) == dest
    assert dest.read_bytes() == payload
    assert list(dest.parent.iterdir()) == [dest]  # no temporary file left
    assert "blob.bin" in capsys.readouterr().err  # the tqdm bar ran


def test_md5_mismatch_leaves_nothing(http_dir, tmp_path):
    base, served = http_dir
    (served / "blob.bin").write_bytes(b"hello")
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(UserError, match="MD5"):
        download(f"{base}/blob.bin", dest, expected_md5="0" * 32)
    assert list(dest.parent.iterdir()) == []


def test_interrupted_download_leaves_nothing(http_dir, tmp_path):
    base, _ = http_dir
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DownloadError) as err:
        download(f"{base}/truncated", dest, timeout=5)
    assert list(dest.parent.iterdir()) == []
    assert "\n" not in str(err.value)


def test_existing_file_survives_a_failed_download(http_dir, tmp_path):
    base, _ = http_dir
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"old")
    with pytest.raises(DownloadError):
        download(f"{base}/missing.bin", dest)
    assert dest.read_bytes() == b"old"


@pytest.mark.parametrize("case", ["404", "closed-port"])
def test_network_errors_are_user_errors(http_dir, tmp_path, case):
    base, _ = http_dir
    url = f"{base}/missing.bin" if case == "404" else f"http://127.0.0.1:{_closed_port()}/x"
    with pytest.raises(UserError) as err:
        download(url, tmp_path / "x", timeout=5)
    assert url in str(err.value) and "\n" not in str(err.value)
    assert ("404" in err.value.reason) if case == "404" else err.value.reason
    assert not (tmp_path / "x").exists()

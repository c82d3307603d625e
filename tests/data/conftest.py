"""Fixtures for the data tests: an isolated cache, IDX writers and a local HTTP mirror."""

from __future__ import annotations

import functools
import gzip
import http.server
import struct
import threading
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Point difflab's cache at a fresh folder and drop any mirror overrides from the environment."""
    root = tmp_path / "cache"
    monkeypatch.setenv("DIFFLAB_CACHE", str(root))
    for name in ("MNIST", "FASHION_MNIST", "KMNIST", "CIFAR10"):
        monkeypatch.delenv(f"DIFFLAB_MIRROR_{name}", raising=False)
    return root


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000 08 <ndim>, big-endian dims, raw values."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


@pytest.fixture
def write_idx():
    """`write_idx(path, array)`: an IDX file, gzipped when `path` ends in ".gz"."""

    def write(path: Path, array: np.ndarray) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = idx_bytes(array)
        path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
        return path

    return write


@pytest.fixture
def tiny_split():
    """`tiny_split(n)`: `(images (n, 28, 28) uint8, labels (n,) uint8)`, every class 0..9 cycling."""

    def make(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        return images, (np.arange(n) % 10).astype(np.uint8)

    return make


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder; `/truncated` promises 1000 bytes and sends 10."""

    def do_GET(self):
        if self.path.endswith("/truncated"):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def http_dir(tmp_path):
    """A threaded HTTP server on 127.0.0.1 serving `tmp_path/served`; yields `(base_url, folder)`."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_Handler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

"""Download one file, atomically, with a progress bar.

Dataset files are fetched once into the cache and then trusted, so a half-written file under its
final name would poison every later run. We stream into a temporary file in the same directory and
`os.replace` it into place only when it is complete (and its MD5 matches, when one is known).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from difflab import progress
from difflab.errors import UserError

CHUNK_BYTES = 1 << 16
USER_AGENT = "difflab"  # some mirrors refuse urllib's default agent


class DownloadError(UserError):
    """A download failed; `reason` is the short cause, for callers that phrase their own message."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"download of {url} failed ({reason}); fix: check the network or the URL")
        self.url = url
        self.reason = reason


def download(url: str, dest: Path, *, timeout: float = 30, expected_md5: str | None = None) -> Path:
    """Fetch `url` to `dest`; on any failure `dest` is untouched and no temporary file remains."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _stream(url, out, timeout=timeout, label=dest.name)
        if expected_md5 is not None and digest != expected_md5.lower():
            raise DownloadError(url, f"MD5 {digest} differs from the expected {expected_md5}; "
                                     "the file is damaged or the mirror serves another version")
        os.replace(tmp, dest)
    except BaseException:  # KeyboardInterrupt too: never leave the .part file behind
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _stream(url: str, out, *, timeout: float, label: str) -> str:
    """Copy the response body to `out` in chunks; return its MD5 hex digest."""
    digest = hashlib.md5(usedforsecurity=False)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with progress.bar(total, label, unit="B") as bar:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise DownloadError(url, f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise DownloadError(url, str(err.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as err:  # timeouts, resets, bad URLs
        raise DownloadError(url, f"{type(err).__name__}: {err}") from None
    if total is not None and received != total:
        raise DownloadError(url, f"connection closed after {received} of {total} bytes")
    return digest.hexdigest()

"""Guarantee 8: fuzzed entry points give clean results or one-line errors, never a traceback or a hang.

Hypothesis drives the CLI argument parser and config checks (training never starts: the run folder
sits under a file, which is refused before any data is read) and the bytes given to the IDX and
image-folder loaders.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from difflab.cli import main
from difflab.data.folder import load_image_folder
from difflab.data.idx import read_idx
from difflab.errors import UserError

FUZZ = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
FLAGS = ["--steps", "--lr", "--batch-size", "--channels", "--solver", "--schedule", "--num-timesteps", "--guidance",
         "--cond-dropout", "--minutes", "--epochs", "--seed", "--dataset", "--objective", "--resume", "--label",
         "--n", "--eta", "--device", "--conditional", "--no-conditional", "--bogus", "-x", "--"]
VALUES = st.one_of(st.sampled_from(["0", "-1", "1e309", "nan", "inf", "-inf", "8,16", "", ",", "ddim", "euler",
                                    "cuda", "mnist5k", "folder:", "1" * 40, "0x10", "\x00", "é"]),
                   st.text(max_size=12),
                   st.integers().map(str), st.floats().map(str))
TOKENS = st.lists(st.one_of(st.sampled_from(FLAGS), VALUES), max_size=8)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("difflab: error:") and err.count("\n") == 1, err
    return err


@FUZZ
@given(tokens=TOKENS, command=st.sampled_from(["train", "sample", "evaluate", "nope"]))
def test_fuzzed_command_lines_fail_cleanly(tmp_path, capsys, tokens, command):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    tail = ["--out", str(blocked / "run")] if command == "train" else []
    args = [command, *([] if command == "train" else [str(tmp_path / "no-run")]), *tokens, *tail]
    assert main(args) == 2  # every path ends in a refusal before any work: parse, config, run folder
    one_line_error(capsys)


def test_a_newline_in_an_argument_still_gives_one_line(capsys):
    assert main(["train", "stray\ntoken"]) == 2  # argparse: "unrecognized arguments: stray<newline>token"
    one_line_error(capsys)


@FUZZ
@given(data=st.binary(max_size=300), gz=st.booleans())
def test_fuzzed_idx_bytes(tmp_path, data, gz):
    path = tmp_path / ("f.gz" if gz else "f")
    path.write_bytes(gzip.compress(data) if gz else data)
    try:
        array = read_idx(path)
    except UserError as err:
        assert "\n" not in str(err)
    else:
        assert isinstance(array, np.ndarray) and array.dtype == np.uint8


@FUZZ
@given(dims=st.lists(st.integers(0, 300), min_size=1, max_size=3), tail=st.integers(-5, 5))
def test_fuzzed_idx_headers(tmp_path, dims, tail):
    """Plausible headers with a body slightly too short or long: exact length or a clean error."""
    expected = int(np.prod(dims))
    body = max(0, expected + tail)
    path = tmp_path / "f"
    path.write_bytes(bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + bytes(body))
    try:
        assert read_idx(path).shape == tuple(dims) and body == expected
    except UserError:
        assert body != expected


def _png(size: int, mode: str) -> bytes:
    import io

    out = io.BytesIO()
    Image.new(mode, (size, size)).save(out, format="PNG")
    return out.getvalue()


PNG = _png(8, "L")


@FUZZ
@given(data=st.one_of(st.binary(max_size=200),
                      st.builds(lambda cut, junk: PNG[:cut] + junk, st.integers(0, len(PNG)), st.binary(max_size=20)),
                      st.builds(lambda i, b: PNG[:i] + bytes([b]) + PNG[i + 1:], st.integers(0, len(PNG) - 1),
                                st.integers(0, 255))))
def test_fuzzed_image_bytes(tmp_path, data):
    root = tmp_path / "imgs"
    for label in ("a", "b"):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / "good.png").write_bytes(PNG)
    (root / "b" / "fuzz.png").write_bytes(data)
    try:
        dataset = load_image_folder(root)
    except UserError as err:
        assert "\n" not in str(err)
    else:
        assert dataset.images.shape[0] == 3 and dataset.images.abs().max() <= 1


def test_fuzz_examples_reach_the_error_paths(tmp_path):
    """The IDX fuzz is not vacuous: both outcomes occur on hand-picked inputs."""
    path = Path(tmp_path / "f")
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 9]))
    assert read_idx(path).tolist() == [7, 9]
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(UserError):
        read_idx(path)

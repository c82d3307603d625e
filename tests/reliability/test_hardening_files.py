"""Issue 19, classes 6 and 8: links, special files, size limits, and damaged or foreign bytes in every file
a run folder holds. Each read is a result or one `UserError`; nothing outside the folder is read or changed.

The folder is made, not trained (a tiny network's fresh weights), so the Hypothesis tests stay fast.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from difflab.cli import main
from difflab.errors import UserError
from difflab.nn.spec import build
from difflab.run import Run, RunFolder
from difflab.training.config import TrainConfig

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CONFIG = TrainConfig(channels=(8, 16), steps=2, sample_steps=2)
STATE_INFO = {"step": 2, "position": 16, "seen": 16, "elapsed": 1.5, "ema_updates": 2, "grids_written": 0,
              "skipped_steps": 0, "optimizer": {"param_groups": [], "scalars": {}}, "rng": {}, "config": {}}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A run folder as training leaves it: config, model.json, weights, a snapshot, metrics, an evaluation."""
    folder = RunFolder(tmp_path_factory.mktemp("made") / "run")
    spec = CONFIG.model_spec((1, 28, 28), 10)
    folder.create(CONFIG, {"class_names": [str(i) for i in range(10)], "image_shape": [1, 28, 28], "model": spec.to_dict()})
    weights = build(spec).state_dict()
    for name in ("model", "ema"):
        folder.save_weights(name, weights)
    folder.write_state({"model": weights, "ema": weights, "optimizer": {}}, STATE_INFO)
    for step in (1, 2):
        folder.append_metrics({"step": step, "loss": 0.5, "lr": 1e-3, "images_per_s": 10.0, "elapsed": 0.1, "epoch": 0.01})
    folder.write_eval("final", {"accuracy": 0.5})
    folder.write_distill({"student_steps": 4})
    return folder.path


@pytest.fixture
def run(made, tmp_path) -> Path:
    shutil.copytree(made, tmp_path / "run")
    return tmp_path / "run"


def read_everything(path: Path) -> None:
    """Every reader of a run folder's JSON (and the weights' loader, which reads model.json)."""
    folder = RunFolder(path)
    for read in (folder.read_config, folder.read_meta, folder.read_spec, folder.read_state_info, folder.read_metrics,
                 folder.read_evals, lambda: folder.read_eval("final"), folder.read_distill, lambda: Run.load(path)):
        try:
            read()
        except UserError as err:
            assert "\n" not in str(err)


# --- class 6: links and special files ------------------------------------------------------------
def test_a_fifo_as_config_is_refused_not_waited_on(run, capsys):
    (run / "config.json").unlink()
    os.mkfifo(run / "config.json")
    result = {}
    reader = threading.Thread(target=lambda: result.update(code=main(["sample", str(run), "--n", "1", "--out",
                                                                       str(run.parent / "x.png")])), daemon=True)
    reader.start()
    reader.join(timeout=20)
    if reader.is_alive():  # the old behaviour: blocked in open(); let it go, then fail
        os.close(os.open(run / "config.json", os.O_WRONLY | os.O_NONBLOCK))
        reader.join(timeout=5)
        pytest.fail("reading a FIFO config.json hung")
    assert result["code"] == 2 and "not a regular file (a FIFO)" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/urandom", "outside.json"])
def test_config_linked_out_of_the_folder_is_refused_unread(run, target):
    outside = run.parent / "outside.json"
    outside.write_text(json.dumps(CONFIG.to_dict()))
    (run / "config.json").unlink()
    (run / "config.json").symlink_to(outside if target == "outside.json" else target)
    with pytest.raises(UserError, match="link out of the run folder"):
        RunFolder(run).read_config()


def test_weights_linked_out_of_the_folder_are_refused(run):
    outside = run.parent / "weights.safetensors"
    os.replace(run / "ema.safetensors", outside)
    (run / "ema.safetensors").symlink_to(outside)
    with pytest.raises(UserError, match="link out of the run folder"):
        Run.load(run)


def test_metrics_linked_out_are_neither_read_nor_written_through(run):
    outside = run.parent / "secret.jsonl"
    outside.write_text('{"step": 1, "loss": 0.25}\n')
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").symlink_to(outside)
    folder = RunFolder(run)
    with pytest.raises(UserError, match="link out of the run folder"):
        folder.read_metrics()
    with pytest.raises(UserError, match="link or a special file"):
        folder.append_metrics({"step": 2, "loss": 0.5})
    folder.write_metrics([])  # a new run: the link is replaced by a file, its target untouched
    assert outside.read_text() == '{"step": 1, "loss": 0.25}\n' and not (run / "metrics.jsonl").is_symlink()


def test_sub_folders_linked_out_are_refused_and_nothing_is_written_there(run):
    outside = run.parent / "elsewhere"
    outside.mkdir()
    (outside / "picture.png").write_bytes(b"not yours")
    (run / "eval").rename(run / "eval-old")
    (run / "eval").symlink_to(outside)
    folder = RunFolder(run)
    with pytest.raises(UserError, match="link out of the run folder"):
        folder.write_eval("x", {"accuracy": 1.0})
    with pytest.raises(UserError, match="link out of the run folder"):
        folder.read_bytes(run / "eval" / "picture.png")  # what the report inlines
    assert sorted(p.name for p in outside.iterdir()) == ["picture.png"]


def test_a_state_folder_linked_out_is_not_cleaned_or_read(run):
    outside = run.parent / "not-state"
    (run / "state").rename(outside)
    (run / "state").symlink_to(outside)
    (outside / ".someones.tmp").write_text("keep me")
    with pytest.raises(UserError, match="link out of the run folder"):
        RunFolder(run).read_state()
    assert (outside / ".someones.tmp").read_text() == "keep me"


def test_reads_have_a_size_limit(run):
    with open(run / "config.json", "r+b") as f:
        f.truncate(2**27)  # 128 MiB, sparse: no disk used
    with pytest.raises(UserError, match="more than the"):
        RunFolder(run).read_config()


# --- class 8: damaged or foreign JSON, and damaged tensors ----------------------------------------
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                           max_leaves=8)
JSON_FILES = {"config.json": CONFIG.to_dict, "model.json": None, "state/trainer.json": lambda: STATE_INFO,
              "eval/final.json": lambda: {"accuracy": 0.5}, "distill.json": lambda: {"student_steps": 4}}


@FUZZ
@given(name=st.sampled_from(sorted(JSON_FILES) + ["metrics.jsonl"]), data=st.binary(max_size=200))
@example(name="config.json", data=b"[" * 100_000)  # deeper than the parser's recursion limit
@example(name="state/trainer.json", data=b'{"step": ' + b"9" * 5000 + b"}")  # longer than int() takes
@example(name="metrics.jsonl", data=b'{"step": "x", "loss": 1}\n{"step": 1, "loss": [1]}\n{"step": 1e400}\n')
def test_damaged_bytes_in_any_json_file_are_one_line(made, tmp_path_factory, name, data):
    run = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(made, run)
    (run / name).write_bytes(data)
    read_everything(run)


@FUZZ
@given(name=st.sampled_from(sorted(JSON_FILES)), key=st.text(max_size=12), value=JSON_VALUES, data=st.data())
@example(name="model.json", key="class_names", value=5, data=None)
@example(name="model.json", key="image_shape", value=["a"], data=None)
@example(name="state/trainer.json", key="elapsed", value="soon", data=None)
@example(name="config.json", key="channels", value=5, data=None)
@example(name="distill.json", key="student_steps", value="four", data=None)
def test_foreign_values_in_any_json_file_are_one_line(made, tmp_path_factory, name, key, value, data):
    run = tmp_path_factory.mktemp("foreign") / "run"
    shutil.copytree(made, run)
    content = json.loads((run / name).read_text())
    if data is not None and content and key not in content:
        key = data.draw(st.sampled_from(sorted(content)))  # mostly a key difflab wrote, given a foreign value
    content[key] = value
    (run / name).write_text(json.dumps(content))
    read_everything(run)


def _valid_weights(made: Path) -> bytes:
    return (made / "ema.safetensors").read_bytes()


@FUZZ
@given(edits=st.lists(st.tuples(st.booleans(), st.floats(0, 1), st.binary(min_size=1, max_size=4)), min_size=1, max_size=4),
       cut=st.one_of(st.none(), st.floats(0, 1)))
@example(edits=[(True, 0.5, b"\x00\x00\xc0\x7f")], cut=None)  # a float32 NaN among the weights
@example(edits=[(True, 0.1, b"\x00\x00\x80\xff")], cut=None)  # -inf
@example(edits=[(False, 0.0, b"\xff\xff\xff\xff")], cut=None)  # a header length of 4 GB
def test_damaged_weight_bytes_are_refused_or_fit_the_model(made, tmp_path_factory, edits, cut):
    data = bytearray(_valid_weights(made))
    start = 8 + int.from_bytes(data[:8], "little")  # the tensors' bytes follow the JSON header
    for in_data, where, patch in edits:
        at = start + 4 * int(where * (len(data) - start - 4) / 4) if in_data else int(where * (start - len(patch)))
        data[at : at + len(patch)] = patch  # in the data: aligned, so a NaN pattern is one float
    if cut is not None:
        data = data[: int(cut * len(data))]
    run = tmp_path_factory.mktemp("weights") / "run"
    shutil.copytree(made, run)
    (run / "ema.safetensors").write_bytes(bytes(data))
    try:
        loaded = Run.load(run)
    except UserError as err:
        assert "\n" not in str(err)
        return
    assert all(bool(torch.isfinite(p).all()) for p in loaded.model.state_dict().values())

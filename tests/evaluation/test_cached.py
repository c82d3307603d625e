"""The evaluation networks' one load-or-train path: a hit reads what was written, anything damaged is
retrained with one line on stderr (never a traceback, never an error about a file the user never made)."""

import json

import pytest
import torch
from torch import nn

from difflab.evaluation.cached import load_or_train


class Tiny(nn.Linear):
    def __init__(self, width: int) -> None:
        super().__init__(width, 2)
        self.config = {"width": width}


@pytest.fixture
def trainer():
    calls = []

    def train():
        calls.append(1)
        torch.manual_seed(len(calls))
        net = Tiny(3)
        return net, {"model": net.config, "score": 0.5}

    train.calls = calls
    return train


def load(folder, train):
    return load_or_train(folder, "k", build=lambda meta: Tiny(**meta["model"]), train=train, what="test net")


def test_a_hit_returns_the_same_weights_without_training(tmp_path, trainer):
    first, meta = load(tmp_path, trainer)
    again, meta_again = load(tmp_path, trainer)
    assert len(trainer.calls) == 1 and meta_again == meta == {"model": {"width": 3}, "score": 0.5}
    assert torch.equal(first.weight, again.weight) and not again.training


DAMAGE = {
    "truncated weights": ("k.safetensors", lambda b: b[: len(b) // 2]),
    "not safetensors": ("k.safetensors", lambda b: b"garbage"),
    "nan weights": ("k.safetensors", None),
    "meta not json": ("k.json", lambda b: b"{oops"),
    "meta of another shape": ("k.json", lambda b: json.dumps({"model": {"width": 5}}).encode()),
    "meta without the model": ("k.json", lambda b: b"{}"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_cache_is_said_in_one_line_and_retrained(tmp_path, trainer, capsys, case):
    load(tmp_path, trainer)
    name, edit = DAMAGE[case]
    path = tmp_path / name
    if edit is None:  # a well-formed file holding NaN
        from safetensors.torch import save_file

        save_file({"weight": torch.full((2, 3), float("nan")), "bias": torch.zeros(2)}, str(path))
    else:
        path.write_bytes(edit(path.read_bytes()))
    capsys.readouterr()
    net, meta = load(tmp_path, trainer)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(trainer.calls) == 2 and torch.isfinite(net.weight).all() and meta["model"] == {"width": 3}
    assert len(err) == 1 and "cached test net" in err[0] and "damaged" in err[0] and "training it again" in err[0]
    load(tmp_path, trainer)  # the rewritten cache is whole again
    assert len(trainer.calls) == 2


def test_a_missing_half_is_trained_quietly(tmp_path, trainer, capsys):
    load(tmp_path, trainer)
    (tmp_path / "k.json").unlink()
    load(tmp_path, trainer)
    assert len(trainer.calls) == 2 and capsys.readouterr().err == ""


def test_a_cache_that_cannot_be_written_warns_and_the_network_still_serves(tmp_path, trainer, capsys, monkeypatch):
    import errno

    from difflab.run import files

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "atomic_write_bytes", full_disk)
    net, meta = load(tmp_path, trainer)
    assert meta["score"] == 0.5 and not net.training and len(trainer.calls) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not cache the test net" in err[0] and "free disk space" in err[0]
    assert not list(tmp_path.iterdir())  # nothing half-written
    monkeypatch.undo()
    load(tmp_path, trainer)  # the next run trains again and caches
    assert len(trainer.calls) == 2 and (tmp_path / "k.safetensors").is_file()


def test_an_unusable_cache_folder_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    from difflab.errors import UserError
    from difflab.paths import cache_dir

    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("DIFFLAB_CACHE", str(tmp_path / "afile"))
    with pytest.raises(UserError, match=r"cannot create difflab's cache folder .*afile/judges .*fix: set DIFFLAB_CACHE"):
        cache_dir("judges")

import json

import pytest

from difflab.errors import UserError
from difflab.training.config import DEFAULT_STEPS, TrainConfig


def test_json_and_toml_round_trip(tmp_path):
    config = TrainConfig(channels=(8, 16), lr=1e-3, steps=10)
    config.save(tmp_path / "config.json")
    assert TrainConfig.load(tmp_path / "config.json") == config
    (tmp_path / "c.toml").write_text('channels = [8, 16]\nlr = 1e-3\nsteps = 10\n')
    assert TrainConfig.load(tmp_path / "c.toml") == config


@pytest.mark.parametrize("changes, message", [
    (dict(steps=0), "--steps must be positive"),
    (dict(schedule="quad"), "unknown schedule 'quad'"),
    (dict(objective="score"), "unknown objective 'score'"),
    (dict(guidance=-1.0), "--guidance must be >= 0"),
    (dict(cond_dropout=1.0), "--cond-dropout must be in"),
])
def test_bad_values_name_the_value(changes, message):
    with pytest.raises(UserError, match=message):
        TrainConfig(**changes)


def test_default_budget_applies_only_when_none_is_given():
    assert (TrainConfig().steps, TrainConfig().minutes) == (DEFAULT_STEPS, None)
    assert (TrainConfig(minutes=2.0).steps, TrainConfig(steps=100).minutes) == (None, None)


def test_unknown_key_and_bad_file(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"learning_rate": 1}))
    with pytest.raises(UserError, match="unknown config key"):
        TrainConfig.load(tmp_path / "c.json")
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid json"):
        TrainConfig.load(tmp_path / "d.json")


def test_auto_precision_is_bf16_only_on_a_cpu_with_native_bf16(monkeypatch):
    import torch

    from difflab import precision

    for native in (True, False):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda native=native: native)
        assert precision.resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
        assert precision.resolve_precision("auto", torch.device("cuda")) == "fp32"  # host-bound there: not measured to pay
        assert precision.resolve_precision("fp32", torch.device("cpu")) == "fp32"
    with pytest.raises(UserError, match="unknown precision 'fp16'; use one of auto, fp32, bf16"):
        TrainConfig(precision="fp16")

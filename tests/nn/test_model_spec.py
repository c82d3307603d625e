"""`ModelSpec` (what network a run holds) and the `Denoiser` contract: round trips and clear refusals."""

import pytest
import torch

from difflab.errors import UserError
from difflab.nn.spec import Denoiser, ModelSpec, build
from difflab.sampling import Condition, null_of
from difflab.training.config import TrainConfig


def test_spec_round_trips_through_a_dict_and_rebuilds_the_same_network():
    spec = ModelSpec(channels=(8, 16), num_classes=3, prediction="eps")
    again = ModelSpec.from_dict(spec.to_dict())
    assert again == spec and again.channels == (8, 16)
    torch.manual_seed(0)
    model = build(spec)
    assert isinstance(model, Denoiser) and model.spec == spec
    x, t, c = torch.randn(2, 1, 28, 28), torch.tensor([0, 999]), torch.tensor([0, 3])
    assert model(x, t, c).shape == x.shape


def test_unknown_fields_newer_versions_and_bad_predictions_are_refused():
    with pytest.raises(UserError, match="unknown model field"):
        ModelSpec.from_dict({"channels": [8], "wings": 2}, source="model.json")
    with pytest.raises(UserError, match="version 99 is newer"):
        ModelSpec.from_dict({"version": 99})
    with pytest.raises(UserError, match="unknown prediction"):
        ModelSpec(prediction="score")
    with pytest.raises(UserError, match="does not describe a difflab model"):
        ModelSpec.from_dict([1, 2])


def test_an_old_model_json_without_prediction_takes_it_from_the_config():
    assert ModelSpec.from_dict({"channels": [8, 16]}, prediction="x0").prediction == "x0"
    assert ModelSpec.from_dict({"channels": [8, 16], "prediction": "v"}, prediction="x0").prediction == "v"


def test_a_users_factory_builds_any_network_with_the_contract():
    class Tiny(torch.nn.Module):
        def __init__(self, spec):
            super().__init__()
            self.conv = torch.nn.Conv2d(spec.in_channels, spec.in_channels, 1)

        def forward(self, x, t, cond):
            return self.conv(x)

    spec = TrainConfig().model_spec((1, 28, 28), 10)
    model = build(spec, Tiny)
    assert isinstance(model, Tiny) and model.spec == spec and isinstance(model, Denoiser)


def test_config_spec_is_text_or_class_and_the_denoiser_is_not_samplable():
    assert TrainConfig(conditioning="text").model_spec((1, 28, 28), 10, text_dim=384).num_classes == 0
    assert TrainConfig().model_spec((3, 32, 32), 10).image_shape == (3, 32, 32)
    assert not TrainConfig(objective="denoise").model_spec((1, 28, 28), 10).samplable


def test_condition_null_branch_and_range_checks():
    cond = Condition.classes([0, 2], 3)
    assert cond.kind == "class" and torch.equal(cond.null(), torch.tensor([3, 3]))
    text = Condition.text(torch.ones(2, 4, 8))
    assert text.kind == "text" and torch.equal(text.null(), torch.zeros(2, 4, 8))
    none = Condition.unconditional(5)
    assert none.kind == "none" and len(none) == 5 and none.null() is None and len(none.slice(3, 10)) == 2
    assert null_of(None, 3) is None
    with pytest.raises(UserError, match="label 3 is out of range for a 3-class model"):
        Condition.classes([3], 3)
    with pytest.raises(UserError, match="this model is unconditional"):
        Condition.classes([0], 0)

import pytest
import torch

from difflab.errors import UserError
from difflab.nn.unet import UNet


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("size, channels", [(28, (8, 16, 16)), (32, (8, 16, 16)), (64, (8, 16, 16, 32))])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_output_shape(in_channels, size, channels, num_classes):
    model = UNet(in_channels=in_channels, image_size=size, channels=channels, num_classes=num_classes,
                 attention_levels=(len(channels) - 1,))
    x = torch.randn(2, in_channels, size, size)
    cond = torch.tensor([3, num_classes]) if num_classes else None
    assert model(x, torch.tensor([0, 999]), cond).shape == x.shape


def test_labels_change_the_output_and_none_means_null():
    torch.manual_seed(0)
    model = UNet(channels=(8, 16), num_classes=10)
    for p in model.parameters():  # zero-initialised output layers would hide the conditioning
        torch.nn.init.normal_(p, std=0.1)
    x, t = torch.randn(1, 1, 28, 28), torch.tensor([500])
    out3, out4 = model(x, t, torch.tensor([3])), model(x, t, torch.tensor([4]))
    assert (out3 - out4).abs().max() > 1e-4
    assert torch.equal(model(x, t, None), model(x, t, torch.tensor([10])))


def test_single_step_denoiser_ignores_time():
    model = UNet(channels=(8, 16), num_classes=0, time_conditioning=False)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(2, 1, 28, 28)
    assert torch.equal(model(x, torch.tensor([1, 2])), model(x, None))


def test_config_round_trip_gives_identical_outputs(tmp_path):
    from difflab.training.checkpoint import load_tensors, save_tensors

    model = UNet(channels=(8, 16, 16), attention_levels=(2,), num_classes=10)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_tensors(tmp_path / "m.safetensors", model.state_dict())
    clone = UNet(**model.config)
    clone.load_state_dict(load_tensors(tmp_path / "m.safetensors"))
    x, t, c = torch.randn(3, 1, 28, 28), torch.tensor([1, 500, 999]), torch.tensor([0, 9, 10])
    assert torch.equal(model(x, t, c), clone(x, t, c))


def test_bad_shapes_are_user_errors():
    with pytest.raises(UserError, match="not divisible"):
        UNet(image_size=30, channels=(8, 16, 32))
    with pytest.raises(UserError, match="bad U-Net shape"):
        UNet(channels=(8, 16), attention_levels=(5,))

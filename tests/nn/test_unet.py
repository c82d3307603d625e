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
    from difflab.nn.spec import ModelSpec, build
    from difflab.run.files import load_tensors, read_json, save_tensors, write_json

    model = UNet(channels=(8, 16, 16), attention_levels=(2,), num_classes=10)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    save_tensors(tmp_path / "m.safetensors", model.state_dict())
    write_json(tmp_path / "spec.json", model.spec.to_dict())  # save -> load through JSON, as a run folder does
    spec = ModelSpec.from_dict(read_json(tmp_path / "spec.json"))
    assert spec == model.spec
    clone = build(spec)
    clone.load_state_dict(load_tensors(tmp_path / "m.safetensors"))
    x, t, c = torch.randn(3, 1, 28, 28), torch.tensor([1, 500, 999]), torch.tensor([0, 9, 10])
    assert torch.equal(model(x, t, c), clone(x, t, c))


def test_bad_shapes_are_user_errors():
    with pytest.raises(UserError, match=r"image size 30 px cannot be halved 2 times .*multiple of 4 \(e\.g\. 32\)"):
        UNet(image_size=30, channels=(8, 16, 32))
    with pytest.raises(UserError, match=r"multiple of 4 \(e\.g\. 4\)"):  # never suggests 0
        UNet(image_size=1, channels=(8, 16, 32))
    with pytest.raises(UserError, match=r"bad U-Net shape.*levels are 0\.\.1"):
        UNet(channels=(8, 16), attention_levels=(5,))
    with pytest.raises(UserError, match="width\\(s\\) 6, 10 .*not multiples of 4"):  # the middle block attends too
        UNet(channels=(8, 6, 10), attention_levels=(1,))
    with pytest.raises(UserError, match="width\\(s\\) 18 "):  # text: cross-attention in the middle
        UNet(channels=(8, 18), num_classes=0, text_dim=12, cross_attention_levels=())


@pytest.mark.parametrize("channels", [(7, 14), (1,), (3, 5, 7)])
def test_any_accepted_width_builds_a_working_network(channels):
    """Odd first widths once broke the time MLP (its sinusoidal input came out one short)."""
    model = UNet(channels=channels, num_classes=10)
    x = torch.randn(2, 1, 28, 28)
    assert model(x, torch.tensor([0, 999]), torch.tensor([1, 10])).shape == x.shape


def _text_unet(**kw):
    torch.manual_seed(0)
    net = UNet(channels=(8, 16, 32), num_classes=0, text_dim=12, cross_attention_levels=(1, 2), **kw)
    for p in net.parameters():  # zero-initialised output layers would hide the conditioning
        torch.nn.init.normal_(p, std=0.2)
    return net


def test_text_conditioning_is_read_and_padding_is_ignored():
    net = _text_unet()
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([10, 500])
    tokens = torch.randn(2, 3, 12)
    padded = torch.cat([tokens, torch.zeros(2, 4, 12)], dim=1)  # (2, 7, 12): four padding rows
    out = net(x, t, tokens)
    assert (net(x, t, padded) - out).abs().max() < 1e-5  # padding changes nothing
    assert (net(x, t, torch.randn(2, 3, 12)) - out).abs().max() > 1e-3  # another prompt changes the output
    assert torch.equal(net(x, t, torch.zeros(2, 5, 12)), net(x, t, None))  # the empty prompt is the null branch


def test_text_unet_contract_errors_and_config_round_trip():
    net = _text_unet()
    with pytest.raises(UserError, match="prompt token embeddings"):
        net(torch.randn(1, 1, 28, 28), torch.tensor([3]), torch.tensor([7]))  # labels given to a text model
    with pytest.raises(UserError, match="not both"):
        UNet(num_classes=10, text_dim=12)
    with pytest.raises(UserError, match="cross_attention_levels"):
        UNet(channels=(8, 16), num_classes=0, text_dim=12, cross_attention_levels=(2,))
    twin = UNet(**net.spec.network_kwargs())
    twin.load_state_dict(net.state_dict())
    x, t, c = torch.randn(2, 1, 28, 28), torch.tensor([1, 2]), torch.randn(2, 4, 12)
    assert torch.equal(twin(x, t, c), net(x, t, c))

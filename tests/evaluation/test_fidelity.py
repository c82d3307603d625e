"""The torch-fidelity bridge: the 1→3 channel expansion, and clear skips instead of downloads."""

from __future__ import annotations

import sys

import pytest
import torch

from difflab.evaluation import fidelity


def test_gray_images_become_three_equal_uint8_channels():
    x = torch.tensor([-1.0, 0.0, 1.0, 2.0]).reshape(1, 1, 2, 2)  # 2.0: out of range, clamped
    rgb = fidelity.to_rgb_uint8(x)
    assert rgb.shape == (1, 3, 2, 2) and rgb.dtype == torch.uint8
    assert rgb[0, :, 0, 0].tolist() == [0, 0, 0] and rgb[0, :, 1, 1].tolist() == [255, 255, 255]
    assert rgb[0, :, 0, 1].tolist() == [128] * 3
    assert (rgb[:, 0] == rgb[:, 1]).all() and (rgb[:, 1] == rgb[:, 2]).all()


def test_colour_images_keep_their_channels_and_bad_shapes_are_refused():
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    rgb = fidelity.to_rgb_uint8(x)
    assert not (rgb[:, 0] == rgb[:, 1]).all()
    with pytest.raises(ValueError, match="got shape"):
        fidelity.to_rgb_uint8(torch.zeros(2, 2, 4, 4))


def test_without_weights_it_skips_with_a_note_and_never_downloads(monkeypatch):
    monkeypatch.delenv(fidelity.WEIGHTS_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # any import attempt would raise
    result = fidelity.inception_metrics(torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 8))
    assert set(result) == {"inception_skipped"}
    assert "--inception-weights" in result["inception_skipped"] and "never downloads" in result["inception_skipped"]


def test_missing_file_and_missing_torch_fidelity_are_named(tmp_path, monkeypatch):
    note = fidelity.inception_metrics(torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 8), weights=tmp_path / "nope.pth")
    assert "not found" in note["inception_skipped"]
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"x")
    monkeypatch.setenv(fidelity.WEIGHTS_ENV, str(weights))
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)
    note = fidelity.inception_metrics(torch.zeros(4, 1, 8, 8), torch.zeros(4, 1, 8, 8))
    assert "torch-fidelity unavailable" in note["inception_skipped"] and "difflab[fidelity]" in note["inception_skipped"]

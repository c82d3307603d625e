"""The default recipe's pieces: Min-SNR loss weights, the guide snapshot, and old runs sampled as they were."""

import json

import pytest
import torch

from difflab.diffusion import NoiseSchedule
from difflab.run.folder import RunFolder
from difflab.training.config import EARLIER_DEFAULTS, TrainConfig
from difflab.training.guide import GuideSnapshot
from difflab.training.losses import min_snr_weight


def test_min_snr_weights_are_one_loss_written_three_ways():
    """‖δx₀‖² = ‖δε‖²/SNR = ‖δv‖²/(SNR+1), so the three weights times those factors agree: min(SNR, γ)."""
    abar = NoiseSchedule("cosine", 1000).alphas_cumprod[torch.tensor([10, 300, 600, 990])].double()
    snr = abar / (1 - abar)
    x0 = min_snr_weight("x0", abar, 5.0)
    assert torch.allclose(x0, snr.clamp(max=5.0))
    assert torch.allclose(min_snr_weight("eps", abar, 5.0) * snr, x0)
    assert torch.allclose(min_snr_weight("v", abar, 5.0) * (snr + 1), x0)
    assert float(min_snr_weight("v", abar, 5.0).max()) <= 1.0  # v-loss weights never exceed plain MSE


def test_min_snr_bad_values_are_refused():
    from difflab.errors import UserError

    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(UserError, match="--min-snr"):
            TrainConfig(min_snr=bad)


def test_guide_snapshot_saved_once_at_its_fraction(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    net = torch.nn.Linear(2, 2)
    progress = [0.0]
    snap = GuideSnapshot(folder, net, lambda: progress[0], 0.5)
    snap()
    assert not folder.has_weights("guide")
    progress[0] = 0.5
    snap()
    saved = folder.load_weights("guide")
    assert torch.equal(saved["weight"], net.weight.detach())
    with torch.no_grad():
        net.weight.add_(1.0)
    progress[0] = 0.9
    snap()  # not again: the guide is the run's weights at its fraction
    assert torch.equal(folder.load_weights("guide")["weight"], saved["weight"])
    assert GuideSnapshot(folder, net, lambda: 0.9, 0.5).done  # a resumed run keeps the guide it has


def test_a_run_saved_before_new_keys_samples_as_it_was(tmp_path):
    folder = RunFolder(tmp_path / "old")
    folder.path.mkdir()
    old = {k: v for k, v in TrainConfig().to_dict().items() if k not in EARLIER_DEFAULTS}
    old["guidance"] = 3.0
    folder.config_path.write_text(json.dumps(old))
    config = folder.read_config()
    assert config.guidance_interval == (0.0, 1.0) and config.min_snr == 0.0 and config.guidance_method == "cfg"
    assert config.autoguidance == 1.0  # no autoguidance on top of CFG before it had a config key
    assert TrainConfig.from_dict(old).guidance_interval == TrainConfig().guidance_interval  # a user's file: today's

"""Every numeric TrainConfig field has a stated range, checked once at parse time (CLI, API and config.json alike)."""

import pytest

from difflab.errors import UserError
from difflab.training.config import TrainConfig


@pytest.mark.parametrize("field, value, match", [
    ("lr", float("nan"), r"--lr must be in \[1e-12, 10\], got nan"), ("lr", float("inf"), "--lr must be in"),
    ("minutes", float("nan"), "--minutes must be in"), ("grad_clip", -1.0, "--grad-clip must be at least 1e-12"),
    ("guidance", float("inf"), "--guidance must be in"), ("seed", 2**70, r"--seed must be in 0\.\."), ("seed", -1, r"--seed must be at least 0 \(accepted: 0\.\."),
    ("batch_size", 10**9, r"--batch-size must be in 1\.\.65536"), ("steps", 2.5, "--steps must be an integer"),
    ("channels", (8, 0), "--channels must be 1 to 6 widths")])
def test_every_numeric_config_field_is_range_checked_at_parse_time(field, value, match):
    with pytest.raises(UserError, match=match):
        TrainConfig(**{field: value})

"""Reference implementations for the evaluation tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def torchmetrics_math():
    """torchmetrics' FID and KID helpers `(_compute_fid, poly_mmd)`.

    torchmetrics imports torch-fidelity whenever it is installed, and torch-fidelity imports torchvision,
    which fails beside torch 2.13: when torchvision is missing, torch-fidelity is reported unavailable to
    torchmetrics' import check so its pure-torch helpers still load."""
    from lightning_utilities.core.imports import RequirementCache, module_available

    original = RequirementCache.__bool__

    def available(self) -> bool:
        if (self.requirement or "").replace("-", "_") == "torch_fidelity" and not module_available("torchvision"):
            return False
        return original(self)

    RequirementCache.__bool__ = available
    try:
        pytest.importorskip("torchmetrics", reason="pip install 'difflab[test]'")
        from torchmetrics.image.fid import _compute_fid
        from torchmetrics.image.kid import poly_mmd
    finally:
        RequirementCache.__bool__ = original
    return _compute_fid, poly_mmd

"""The guide-network callback: autoguidance (Karras et al. 2024) steers a model away from a weaker
version of itself, and the cheapest weaker version is the same run seen earlier. When training first
passes `guide_at` of its budget, the EMA weights are saved once as `guide.safetensors`; a resumed run
that already has them keeps them."""

from __future__ import annotations

from collections.abc import Callable

import torch

from difflab.run.folder import RunFolder


class GuideSnapshot:
    def __init__(self, folder: RunFolder, ema_model: torch.nn.Module, progress: Callable[[], float], at: float, *,
                 enabled: bool = True) -> None:
        self.folder, self.ema_model, self.progress, self.at = folder, ema_model, progress, at
        self.done = not enabled or folder.has_weights("guide")

    def __call__(self) -> None:
        if not self.done and self.progress() >= self.at:
            self.folder.save_weights("guide", self.ema_model.state_dict())
            self.done = True


__all__ = ["GuideSnapshot"]

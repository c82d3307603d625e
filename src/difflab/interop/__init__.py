"""Interop with the diffusers ecosystem: export a run, load a diffusers UNet as a run, image folders.

`DifflabUNet2DModel` (needs diffusers) is imported lazily so `import difflab.interop` stays light.
diffusers only loads classes from modules already imported: `import difflab.interop.diffusers_model`
before `DiffusionPipeline.from_pretrained(EXPORTED)`.
"""

from __future__ import annotations


def __getattr__(name: str):
    if name == "DifflabUNet2DModel":
        from difflab.interop.diffusers_model import DifflabUNet2DModel

        return DifflabUNet2DModel
    raise AttributeError(f"module 'difflab.interop' has no attribute {name!r}")

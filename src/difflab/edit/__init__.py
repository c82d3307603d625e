"""Editing with a trained diffusion model: SDEdit, inpainting, visual anagrams, hybrid images, and the
denoising baselines — each one hook of the one sampling loop (see `difflab.diffusion.sampling`)."""

from difflab.edit.api import EDIT_STEPS, Editor
from difflab.edit.inpaint import inpaint
from difflab.edit.preprocess import box_mask, load_drawing, load_mask
from difflab.edit.sdedit import level_schedule, sdedit
from difflab.edit.views import VIEWS, get_view

__all__ = ["EDIT_STEPS", "VIEWS", "Editor", "box_mask", "get_view", "inpaint", "level_schedule", "load_drawing",
           "load_mask", "sdedit"]

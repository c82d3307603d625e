"""The page's actions without the page: raw field values in, pictures, files and text out.

`Page` turns what Gradio hands over (dropdown strings, numbers that may be NaN, a canvas dict, an upload
path) into calls on `Studio`, and its tensors into enlarged pictures. It never imports Gradio, so every
action is tested on a tiny run without a browser; `app` only lays the page out and wires these methods.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from difflab.errors import UserError
from difflab.studio import inputs, pictures, runs
from difflab.studio.inputs import EVERY_CLASS, UNCONDITIONAL
from difflab.studio.session import Generated, Studio

MASK_SCALE = 8  # the mask editor shows the model input at 8× (224 px for 28 px digits)
FRAME_S = 0.2  # seconds between streamed grids: 5 a second is smooth; each costs a PNG and a fetch


class Page:
    """Every button's work for one `Studio`; `runs_root` is where the Runs tab looks first."""

    def __init__(self, studio: Studio, runs_root: str | Path | None = None) -> None:
        self.studio, self.run = studio, studio.run
        self.runs_root = str(runs_root if runs_root is not None else self.run.path.parent)

    # --- what the fields offer ---------------------------------------------------------------
    def classes(self) -> list[str]:
        return inputs.class_choices(self.run.class_names or tuple(map(str, range(self.run.num_classes))))

    def target_choices(self, *, every: bool = False) -> list[str]:
        extra = [EVERY_CLASS] if every and self.run.num_classes else [UNCONDITIONAL] if not every else []
        return extra + self.classes()

    def header(self) -> str:
        from difflab.training.adequacy import describe

        facts, warning = describe(self.run.folder)
        trained = f" — trained {facts.line()}" if facts is not None else ""
        s = self.run.sampler()
        auto = f" + autoguidance {s.autoguidance:g} (kept under cfg)" if s.autoguidance != 1 else ""
        line = (f"**{self.run.path}**{trained}. Default sampler: {s.solver}, {s.steps} steps, "
                f"{s.guidance_method} guidance {s.guidance:g}{auto}. Outputs go to `{self.studio.out}`.")
        return line + (f"\n\n⚠ {warning}" if warning else "")

    def target(self, choice, *, every: bool = False):
        allow = (EVERY_CLASS,) if every else (UNCONDITIONAL,)
        value = inputs.parse_class(choice, self.run.num_classes, allow=allow)
        return None if value == UNCONDITIONAL else value

    # --- Generate ------------------------------------------------------------------------------
    def generate(self, choice, prompt, n, solver, steps, guidance, method, seed, autoguidance=None) -> Iterator[tuple]:
        """`(progress (i, total), outputs or None)` per sampler step, then `(None, outputs)` at the end; outputs are
        (grid, png, npz, Generated, status). A step's grid comes at most every FRAME_S: faster frames cost the
        page more than they show."""
        settings = self.studio.settings(solver, steps, guidance, method, autoguidance)
        text = (prompt or "").strip()
        if text and not self.run.is_text:
            raise UserError("this run is class-conditional, not a prompt model; fix: clear the caption and pick a class")
        target = text or self.target(choice, every=True)
        shown = time.monotonic()
        for kind, value in self.studio.generate(target, n, settings, seed):
            if kind == "step":
                i, total, x = value
                due = time.monotonic() - shown >= FRAME_S
                shown = time.monotonic() if due else shown
                yield (i, total), ((pictures.grid_picture(x), None, None, None, f"step {i} of {total}") if due else None)
            else:
                g: Generated = value
                yield None, (pictures.grid_picture(g.images), str(g.png), str(g.npz), g, _made(g))

    def save(self, generated: Generated | None) -> str:
        return f"saved {self.studio.save_to_run(generated)}"

    # --- Edit ----------------------------------------------------------------------------------
    def model_input(self, canvas, upload) -> torch.Tensor:
        """The drawing (an uploaded file wins over the canvas) as the model's input `(1, C, H, W)`."""
        picture = inputs.read_upload(upload) if upload else inputs.canvas_image(canvas)
        return inputs.drawing_tensor(picture, self.run.spec.image_shape)

    def mask_background(self, x: torch.Tensor) -> dict:
        """The mask editor's value: the model input enlarged as its background, nothing painted."""
        from difflab.report.images import to_uint8

        image = pictures.enlarge(to_uint8(x)[0], MASK_SCALE)  # no border: the painted layer maps onto the model's pixels
        rgb = np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image
        return {"background": rgb, "layers": [], "composite": rgb}

    def sdedit(self, canvas, upload, level, choice, seed) -> tuple:
        """(input picture, chain picture, mask editor value, the input tensor, caption)."""
        x = self.model_input(canvas, upload)
        levels, rows = self.studio.sdedit(x, level, self.target(choice), seed)  # (2, L, C, H, W)
        caption = ("top: the input noised to " + ", ".join(f"{v:g}" for v in levels) + " of T; bottom: SDEdit "
                   f"from there ({choice})")
        return pictures.grid_picture(x, 1), pictures.rows_picture(list(rows)), self.mask_background(x), x, caption

    def noise(self, canvas, upload, seed) -> tuple:
        """(input picture, forward-noise strip, mask editor value, the input tensor, caption)."""
        x = self.model_input(canvas, upload)
        ts, strip = self.studio.noise_strip(x, seed)
        caption = "q(x_t | x_0) at t = " + ", ".join(map(str, ts))
        return pictures.grid_picture(x, 1), pictures.grid_picture(strip, len(ts)), self.mask_background(x), x, caption

    def inpaint(self, x: torch.Tensor | None, mask_value, choice, seed) -> np.ndarray:
        """Input, mask, inpainted, side by side."""
        if x is None:
            raise UserError("no model input yet; fix: press SDEdit or Forward noise first, then paint the mask on it")
        mask = inputs.painted_mask(mask_value, x.shape[-1])  # (H, W) bool
        out = self.studio.inpaint(x, mask, self.target(choice), seed)
        shown = (mask.float() * 2 - 1).expand_as(x[0])[None]
        return pictures.grid_picture(torch.cat([x, shown, out]), 3)

    # --- Illusions -----------------------------------------------------------------------------
    def anagram(self, first, second, view, n, seed) -> np.ndarray:
        a, b = self.target(first), self.target(second)
        if a is None or b is None:
            raise UserError("an anagram needs two classes; fix: pick a class in both lists")
        images, seen = self.studio.anagram(a, b, view, n, seed)
        return pictures.rows_picture([images, seen])

    def hybrid(self, far, near, sigma, n, seed) -> np.ndarray:
        a, b = self.target(far), self.target(near)
        if a is None or b is None:
            raise UserError("a hybrid needs two classes; fix: pick a class in both lists")
        images, shrunk = self.studio.hybrid(a, b, sigma, n, seed)
        return pictures.rows_picture([images, shrunk])

    # --- Explain -------------------------------------------------------------------------------
    def explain(self, generated: Generated | None, t, method) -> str:
        return str(self.studio.explain(generated, t, method))

    # --- Runs ----------------------------------------------------------------------------------
    def scan(self, root) -> tuple[str, list[str]]:
        """(markdown table of the runs under `root`, their paths for the picker)."""
        found = runs.find_runs(str(root or "").strip() or self.runs_root)
        return runs.summary_table([runs.summary(p) for p in found]), [str(p) for p in found]

    def show_run(self, path) -> tuple[str, str | None]:
        """(the run's summary table, its loss curve PNG in the studio's folder or None)."""
        if not path:
            raise UserError("no run picked; fix: press Scan, then pick a run")
        curve = runs.loss_curve(path, self.studio.path("loss", ".png"))
        return runs.summary_table([runs.summary(path)]) + self._how_to_open(path), str(curve) if curve is not None else None

    def _how_to_open(self, path) -> str:
        """The page keeps one model loaded (its tabs are built for it); another run opens in a studio of its own."""
        import shlex

        if Path(path).resolve() == Path(self.run.path).resolve():
            return "\n\nThis is the run the studio has loaded: the other tabs use it."
        return f"\n\nTo play with this run, start a studio on it: `difflab studio {shlex.quote(str(path))}`"


def _made(g: Generated) -> str:
    what = f"{len(g.images)} images, seed {g.seed}"
    return f"{what}; files: {g.png.name}, {g.npz.name} in {g.png.parent}"


__all__ = ["FRAME_S", "MASK_SCALE", "Page"]

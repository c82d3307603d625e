"""The Gradio page: five tabs laid out and wired to `Page`'s methods (the logic lives there).

Every model action shares one queue (`concurrency_id="model"`): one job runs, the next waits, and the
page says which job it waits for. A `UserError` becomes a `gr.Error` toast; the server keeps serving.
"""

from __future__ import annotations

import functools
import inspect

from difflab.edit.views import VIEWS
from difflab.errors import UserError
from difflab.studio.handlers import Page
from difflab.studio.offline import gradio as gr

MODEL = dict(concurrency_id="model", concurrency_limit=2)  # one running (JobLock), one waiting; the rest queue here
SOLVERS = ("dpm++", "ddim", "ddpm")
METHODS = ("saliency", "integrated-gradients", "grad-cam", "all")


def guarded(page: Page, fn):
    """`fn` with user mistakes shown as a one-line error toast, and a note when the model is busy."""
    def busy_note() -> None:
        if page.studio.lock.busy:
            gr.Warning(f"the model is busy with {page.studio.lock.busy}; yours starts when it ends")

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(*args):
            busy_note()
            try:
                yield from fn(*args)
            except UserError as err:
                raise gr.Error(str(err), print_exception=False) from None
        return gen

    @functools.wraps(fn)
    def call(*args):
        busy_note()
        try:
            return fn(*args)
        except UserError as err:
            raise gr.Error(str(err), print_exception=False) from None
    return call


def build(page: Page):
    """The whole page as a `gr.Blocks` (not launched)."""
    with gr.Blocks(title="difflab studio", analytics_enabled=False) as demo:
        gr.Markdown("# difflab studio\n" + page.header())
        last = gr.State(None)  # this tab's last Generate: for Explain and "save to run"
        with gr.Tabs():
            with gr.Tab("Generate", id="generate"):
                generate_tab(page, last)
            with gr.Tab("Edit from a drawing", id="edit"):
                edit_tab(page)
            with gr.Tab("Illusions", id="illusions"):
                illusions_tab(page)
            with gr.Tab("Explain", id="explain"):
                explain_tab(page, last)
            with gr.Tab("Runs", id="runs"):
                runs_tab(page)
    return demo


def sampler_fields(page: Page) -> list:
    s = page.run.sampler()
    return [gr.Dropdown(list(SOLVERS), value=s.solver, label="sampler", elem_id="solver"),
            gr.Number(s.steps, label="steps", precision=0, elem_id="steps"),
            gr.Dropdown(["cfg", "auto"], value=s.guidance_method, label="guidance method", elem_id="method"),
            gr.Number(s.guidance, label="guidance strength", elem_id="guidance"),
            gr.Number(s.autoguidance, label="autoguidance on top of cfg (1: off)", elem_id="autoguidance",
                      visible=page.run.guide is not None)]  # a run without guide.safetensors has none to add


def generate_tab(page: Page, last) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            choices = page.target_choices(every=True)  # empty for an unconditional run: the field is hidden
            choice = gr.Dropdown(choices, value=choices[0] if choices else None, label="class", elem_id="class",
                                 visible=bool(choices))
            prompt = gr.Textbox(label="caption (prompt models)", visible=page.run.is_text, elem_id="prompt")
            n = gr.Number(16, label="number of samples", precision=0, elem_id="n")
            solver, steps, method, guidance, autoguidance = sampler_fields(page)
            seed = gr.Number(0, label="seed", precision=0, elem_id="seed")
            go = gr.Button("Generate", variant="primary", elem_id="generate-button")
        with gr.Column(scale=2):
            grid = gr.Image(label="samples (x_t after each step, then the result)", format="png", type="numpy",
                            interactive=False, elem_id="generate-grid")
            status = gr.Markdown(elem_id="generate-status")
            with gr.Row():
                png, npz = gr.DownloadButton("Download PNG"), gr.DownloadButton("Download npz")
                save = gr.Button("Save to run", elem_id="save-button")
            saved = gr.Markdown()

    def run(*args, progress=gr.Progress()):  # noqa: B008 - Gradio injects the progress bar through this default
        for at, out in page.generate(*args):
            if at is not None:
                progress(at, desc="sampling", unit="steps")
            if out is not None:
                yield out

    go.click(guarded(page, run), [choice, prompt, n, solver, steps, guidance, method, seed, autoguidance],
             [grid, png, npz, last, status], **MODEL)
    save.click(guarded(page, page.save), [last], [saved])


def edit_tab(page: Page) -> None:
    x = gr.State(None)  # the model input the mask is painted on
    with gr.Row():
        with gr.Column():
            canvas = gr.Sketchpad(label="draw here (dark on white)", type="numpy", image_mode="RGBA", canvas_size=(280, 280),
                                  brush=gr.Brush(colors=["#000000"], default_size=18, color_mode="fixed"),
                                  elem_id="edit-canvas")
            upload = gr.File(label="or upload an image (used instead of the canvas)", type="filepath",
                             elem_id="edit-upload")
            level = gr.Slider(0.02, 1.0, value=0.6, step=0.02, label="noise level (fraction of T)", elem_id="level")
            target = gr.Dropdown(page.target_choices(), value=page.target_choices()[0], label="steer towards")
            seed = gr.Number(0, label="seed", precision=0)
            with gr.Row():
                sd = gr.Button("SDEdit", variant="primary", elem_id="sdedit-button")
                fwd = gr.Button("Forward noise", elem_id="noise-button")
        with gr.Column():
            shown = gr.Image(label="model input", format="png", interactive=False, elem_id="edit-input")
            chain = gr.Image(label="result", format="png", interactive=False, elem_id="edit-chain")
            caption = gr.Markdown()
            mask = gr.ImageEditor(label="paint the region to regenerate (after SDEdit or Forward noise)", type="numpy",
                                  image_mode="RGBA", sources=(), layers=False, transforms=(), canvas_size=(224, 224),
                                  brush=gr.Brush(colors=["#ff3030"], default_size=24, color_mode="fixed"),
                                  elem_id="mask-editor")
            paint = gr.Button("Inpaint", elem_id="inpaint-button")
            inpainted = gr.Image(label="input · mask · inpainted", format="png", interactive=False)
    sd.click(guarded(page, page.sdedit), [canvas, upload, level, target, seed], [shown, chain, mask, x, caption], **MODEL)
    fwd.click(guarded(page, page.noise), [canvas, upload, seed], [shown, chain, mask, x, caption], **MODEL)
    paint.click(guarded(page, page.inpaint), [x, mask, target, seed], [inpainted], **MODEL)


def illusions_tab(page: Page) -> None:
    classes = page.classes()
    if not classes:
        gr.Markdown("Anagrams and hybrids combine two classes; this run is unconditional.")
        return
    pick = lambda i, label: gr.Dropdown(classes, value=classes[min(i, len(classes) - 1)], label=label)
    with gr.Row():
        with gr.Column():
            gr.Markdown("**Visual anagram**: one image reading as the first class upright, the second through the view.")
            first, second = pick(6, "upright"), pick(9, "through the view")
            view = gr.Dropdown([v for v in VIEWS if v != "identity"], value="rot180", label="view")
            n_a, seed_a = gr.Number(8, label="images", precision=0), gr.Number(0, label="seed", precision=0)
            ana = gr.Button("Make anagrams", variant="primary", elem_id="anagram-button")
            ana_out = gr.Image(label="top: as drawn; bottom: through the view", format="png", interactive=False,
                               elem_id="anagram-image")
        with gr.Column():
            gr.Markdown("**Hybrid image**: the low frequencies of one class, the high of another.")
            far, near = pick(1, "seen from afar"), pick(7, "seen up close")
            sigma = gr.Number(1.5, label="low-pass sigma (pixels)")
            n_h, seed_h = gr.Number(8, label="images", precision=0), gr.Number(0, label="seed", precision=0)
            hyb = gr.Button("Make hybrids", variant="primary", elem_id="hybrid-button")
            hyb_out = gr.Image(label="top: full size; bottom: 2× smaller", format="png", interactive=False,
                               elem_id="hybrid-image")
    ana.click(guarded(page, page.anagram), [first, second, view, n_a, seed_a], [ana_out], **MODEL)
    hyb.click(guarded(page, page.hybrid), [far, near, sigma, n_h, seed_h], [hyb_out], **MODEL)


def explain_tab(page: Page, last) -> None:
    gr.Markdown("Explains image 1 of this tab's last **Generate** (same class, seed and sampler): which input "
                "pixels drive the denoiser's noise estimate at a timestep (snapped to a step the sampler visits).")
    with gr.Row():
        t = gr.Slider(0, len(page.run.alphas_cumprod) - 1, value=500, step=1, label="timestep t")
        method = gr.Dropdown(list(METHODS), value="saliency", label="method")
        go = gr.Button("Explain", variant="primary", elem_id="explain-button")
    out = gr.Image(label="attribution", type="filepath", interactive=False, elem_id="explain-image")
    go.click(guarded(page, page.explain), [last, t, method], [out], **MODEL)


def runs_tab(page: Page) -> None:
    with gr.Row():
        root = gr.Textbox(page.runs_root, label="folder holding run folders", scale=3)
        scan = gr.Button("Scan", scale=1, elem_id="scan-button")
    table = gr.Markdown(elem_id="runs-table")
    picked = gr.Dropdown([], label="run", elem_id="run-picker")
    one = gr.Markdown()
    curve = gr.Image(label="loss curve", type="filepath", interactive=False, elem_id="loss-curve")

    def rescan(folder):
        text, found = page.scan(folder)
        return text, gr.Dropdown(choices=found, value=found[0] if found else None)

    scan.click(guarded(page, rescan), [root], [table, picked])
    picked.change(guarded(page, page.show_run), [picked], [one, curve])


__all__ = ["build", "guarded"]

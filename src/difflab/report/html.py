"""`RUN/report.html`: one self-contained page (images inlined as data URIs, no scripts, no network).

The page picks up whatever a run folder holds: every PNG and JSON under eval/, explain/, edit/ or
any other folder appears with a caption from its file name (or the "title"/"caption" key of a JSON
file beside it), so new commands need no report changes. A Content-Security-Policy forbids any
fetch, so a stray external link can never leak a request.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import webbrowser
from datetime import datetime
from html import escape
from pathlib import Path

from difflab.errors import UserError
from difflab.report import curves
from difflab.report.page import CSP, STYLE
from difflab.report.tables import fmt, json_tables
from difflab.run import RunFolder
from difflab.run import files as run_files

SKIP_DIRS = {"state", "tb", "wandb", "mlruns"}  # resumable state and tracker logs: not pictures for people


def write_report(run_dir: str | Path, *, out: str | Path | None = None, open_browser: bool = False) -> Path:
    """Write the report of `run_dir` to `out` (default RUN/report.html) and return its path."""
    folder = RunFolder(run_dir).require_run()
    out = Path(out) if out is not None else folder.report_path
    page = build_page(folder)
    try:
        run_files.atomic_write_text(out, page)
    except OSError as err:
        raise UserError(f"cannot write report {out} ({err.strerror}); fix: --out a writable file path") from None
    if open_browser:
        webbrowser.open(out.resolve().as_uri())
    return out


_ROOT: contextvars.ContextVar[Path | None] = contextvars.ContextVar("report_root", default=None)


def build_page(folder: RunFolder) -> str:
    """The whole HTML document for one run folder. Every file it inlines is read through `run/files.py`:
    regular files inside the folder only (a link out of it, a FIFO or a device is left out), sizes limited."""
    token = _ROOT.set(folder.path)
    try:
        return _page(folder)
    finally:
        _ROOT.reset(token)


def _page(folder: RunFolder) -> str:
    from difflab.report.plots import plot_loss

    run_dir = folder.path
    rows = folder.read_metrics()
    if rows and not folder.sub("plots", "loss.png").exists():
        with contextlib.suppress(ValueError, OSError):  # odd rows or a read-only folder: the page still shows the rest
            plot_loss(rows, folder.sub("plots", "loss.png", create=True))
    sections = [summary_section(folder, rows), curves_section(folder, rows), samples_section(folder, rows),
                guidance_section(folder), eval_section(folder), *picture_sections(folder), config_section(folder)]
    body = "".join(s for s in sections if s)
    title = f"difflab report — {run_dir.resolve().name}"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><main><h1>{escape(title)}</h1>{body}"
            f'<footer>written {datetime.now():%Y-%m-%d %H:%M} from {escape(str(run_dir.resolve()))}</footer>'
            f"</main></body></html>")


# --- building blocks ---------------------------------------------------------------------------
def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def file_bytes(path: Path) -> bytes | None:
    """A file of the run being reported, or None for one that is not a regular file inside it (or is gone)."""
    try:
        return run_files.read_bytes(path, root=_ROOT.get())
    except (UserError, OSError):
        return None


def figure(png: bytes | None, caption: str, *, kind: str = "") -> str:
    """An inlined picture with its caption; kind "pixels" keeps small images sharp when enlarged; nothing for
    a file `file_bytes` refused (None)."""
    if png is None:
        return ""
    return (f'<figure class="{kind}"><img src="{data_uri(png)}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def section(title: str, inner: str, *, note: str = "") -> str:
    note_html = f'<p class="note">{escape(note)}</p>' if note else ""
    return f"<section><h2>{escape(title)}</h2>{note_html}{inner}</section>"


def read_json(path: Path):
    """Parsed JSON, or None for a file another command is still writing (the report must not fail)."""
    data = file_bytes(path)
    try:
        return None if data is None else run_files.parse_json(path, data)
    except (UserError, ValueError):
        return None


def caption_for(png: Path) -> str:
    """The "title"/"caption" of a JSON file beside the picture, else its name in words."""
    side = read_json(png.with_suffix(".json")) if png.with_suffix(".json").exists() else None
    words = png.stem.replace("_", " ").replace("-", " ")
    if isinstance(side, dict):
        title, text = side.get("title"), side.get("caption")
        if title or text:
            return " — ".join(str(t) for t in (title, text) if t)
    return words


# --- sections ----------------------------------------------------------------------------------
def saved_config(folder: RunFolder) -> dict:
    """config.json as saved (a dict: the page shows every key, even one this version does not know)."""
    return read_json(folder.config_path) or {}


def final_eval(folder: RunFolder) -> dict | None:
    """The judge result every finished run gets, or None (missing, or still being written)."""
    try:
        return folder.read_eval("final")
    except UserError:
        return None


def training_facts(folder: RunFolder) -> tuple:
    """(facts, warning) of the weights shown (`difflab.training.adequacy`); (None, None) when unreadable."""
    from difflab.training.adequacy import describe

    try:
        return describe(folder)
    except UserError:  # a damaged snapshot or config: the page still shows the rest
        return None, None


def summary_section(folder: RunFolder, rows: list[dict]) -> str:
    """The few numbers a person wants first: data, budget used, final loss, judge accuracy; above them, loudly,
    a budget that ended too early."""
    config = saved_config(folder)
    items = [("dataset", config.get("dataset")), ("objective / schedule", f"{config.get('objective')} / {config.get('schedule')}")]
    facts, warning = training_facts(folder)
    if facts is not None:  # the final snapshot: exact, where the last metrics line may be up to log_every behind
        items += [("steps", facts.steps), ("images seen", facts.images), ("training time", f"{facts.wall_minutes:.1f} min")]
        items += [("last loss", rows[-1].get("loss"))] if rows else []
    elif rows:
        last = rows[-1]
        items += [("steps", last.get("step")), ("epochs", last.get("epoch")),
                  ("training time", f"{last.get('elapsed', 0) / 60:.1f} min"), ("last loss", last.get("loss"))]
    final = final_eval(folder)
    if isinstance(final, dict) and "accuracy" in final:
        items.append(("judge accuracy of generated images", f"{100 * final['accuracy']:.1f}%"))
    elif isinstance(final, dict) and "mean_confidence" in final and "judge_real_confidence" in final:  # unconditional
        items.append(("judge confidence of generated images", f"{100 * final['mean_confidence']:.1f}% "
                      f"(real: {100 * final['judge_real_confidence']:.1f}%)"))
    cells = "".join(f'<div class="stat"><span>{escape(k)}</span><b>{escape(fmt(v))}</b></div>' for k, v in items)
    head = f'<p class="warning">{escape(warning)}</p>' if warning else ""
    head += f'<p class="facts">trained {escape(facts.line())}</p>' if facts is not None else ""
    return f'{head}<section class="summary">{cells}</section>'


def curves_section(folder: RunFolder, rows: list[dict]) -> str:
    """Loss and learning rate (plots/loss.png) beside images/s and seconds per epoch."""
    parts = []
    loss = folder.sub("plots", "loss.png")
    if loss.exists():
        parts.append(figure(file_bytes(loss), "loss (log scale) and learning rate", kind="plot"))
    speed = curves.speed_figure(rows)
    if speed:
        parts.append(figure(speed, "images per second (every logged step) and seconds per epoch", kind="plot"))
    note = "" if rows else f"{folder.metrics_path.name} is empty: no curves yet"
    return section("Training curves", f'<div class="figs">{"".join(parts)}</div>', note=note)


def samples_section(run: RunFolder, rows: list[dict]) -> str:
    """Sample grids over training (the images emerging), the final grid and the noise → image trajectory."""
    folder = run.sub("samples")
    grids = sorted(folder.glob("step_*.png")) if folder.is_dir() else []
    parts = [figure(file_bytes(p), grid_caption(p, rows), kind="pixels") for p in grids]
    if (folder / "final.png").exists():
        parts.append(figure(file_bytes(folder / "final.png"), f"final (EMA weights, {grid_rows(run)})", kind="pixels"))
    trajectory = ""
    if (folder / "trajectory.png").exists():
        trajectory = ("<h3>Trajectory: noise → image</h3>"
                      + figure(file_bytes(folder / "trajectory.png"), "x_t at evenly spaced sampler steps",
                               kind="pixels trajectory"))
    if not parts and not trajectory:
        return ""
    return section("Samples over training", f'<div class="figs">{"".join(parts)}</div>{trajectory}',
                   note=f"each grid: {grid_rows(run)}, same seed, so the same sample can be followed from grid to grid")


def grid_rows(run: RunFolder) -> str:
    """What a grid's rows are (`training/sample_grids.py` draws them): every class, some of many, or none."""
    from difflab.training.sample_grids import GRID_CLASSES

    if not saved_config(run).get("conditional", True):
        return "100 unconditional samples"
    try:
        classes = len(run.read_meta().get("class_names") or [])
    except UserError:
        classes = 0
    if classes > GRID_CLASSES:
        return f"one row of 10 samples for each of {GRID_CLASSES} of the {classes:,} classes, evenly spaced"
    return "one row of 10 samples per class"


def grid_caption(png: Path, rows: list[dict]) -> str:
    """"step 269 · epoch 3.4 · 0.7 min" from the file name and the nearest metrics line."""
    try:
        step = int(png.stem.split("_")[-1])
    except ValueError:
        return caption_for(png)
    near = min(rows, key=lambda r: abs(r.get("step", 0) - step)) if rows else {}
    extra = f" · epoch {near['epoch']:.1f} · {near['elapsed'] / 60:.1f} min" if "epoch" in near and "elapsed" in near else ""
    return f"step {step}{extra}"


def guidance_section(run: RunFolder) -> str:
    """"Guidance: the trade": one strip per swept w with its numbers, and the frontier plot
    (`difflab.report.guidance`); nothing without eval/guidance_sweep.json."""
    from difflab.report.guidance import ACCURACY_TARGET, EVAL_NAME, FRONTIER, STRIPS

    sweep = read_json(run.sub("eval", f"{EVAL_NAME}.json"))
    keys = ("w", "accuracy", "fd_ratio", "recall")
    rows = [r for r in (sweep.get("rows") or []) if isinstance(r, dict) and all(_is_number(r.get(k)) for k in keys)
            ] if isinstance(sweep, dict) else []
    if not rows:
        return ""
    strips = [(run.sub(*STRIPS, f"w{r['w']:g}.png"), r) for r in rows]  # named by w, never by a path in the JSON
    figs = "".join(figure(file_bytes(p), strength_caption(r), kind="pixels trajectory") for p, r in strips if p.is_file())
    frontier = run.sub(*FRONTIER)
    plot = figure(file_bytes(frontier), "judge accuracy against FD / real floor, one point per w; ★ the default",
                  kind="plot") if frontier.is_file() else ""
    best, target = sweep.get("lowest_fd_at_target"), sweep.get("accuracy_target")
    target = target if _is_number(target) and 0 < target <= 1 else ACCURACY_TARGET  # sweeps before it was per dataset
    here = f"in this run that is w = {best:g}" if _is_number(best) else f"in this run no w reached {100 * target:g}%"
    note = (f"Higher w → more recognisable, less varied (FD up, recall down); the default sits where accuracy "
            f"≥ {100 * target:g}%{_of_real(sweep)} at the lowest FD ({here}; {_method(sweep)}, same noise in every strip). "
            f"{_count(sweep)} images per strength: FD ratios at so small an n read lower than at the 1,000 of "
            f"benchmarks/quality.py; compare strengths with each other.")
    return section("Guidance: the trade", f'<div class="figs"><div>{figs}</div>{plot}</div>', note=note)


def _of_real(sweep: dict) -> str:
    """" (the judge's accuracy on real images)" where the target is that rather than 99%."""
    from difflab.report.guidance import ACCURACY_TARGET

    target = sweep.get("accuracy_target")
    return " (as often as the judge recognises real test images)" if _is_number(target) and target < ACCURACY_TARGET else ""


def _method(sweep: dict) -> str:
    """"cfg guidance", "cfg guidance + autoguidance 3 on every step", "... + the filter (up to 3 redraws)"."""
    auto, redraws = sweep.get("autoguidance"), sweep.get("redraws")
    extra = f" + autoguidance {auto:g} on every step" if _is_number(auto) and auto != 1 else ""
    extra += f", then the filter classifier (up to {redraws:g} redraws)" if _is_number(redraws) and redraws else ""
    return f"{sweep.get('method')} guidance{extra}"


def _count(sweep: dict) -> str:
    n = sweep.get("n")
    return f"{n:,}" if _is_number(n) else "A few hundred"


def strength_caption(row: dict) -> str:
    """One strip's caption: w = 2 (default): accuracy 99.1%, FD 1.4× the real floor, recall 0.81."""
    default = " (default)" if row.get("default") is True else ""
    return (f"w = {row['w']:g}{default}: accuracy {100 * row['accuracy']:.1f}%, "
            f"FD {row['fd_ratio']:.1f}× the real floor, recall {row['recall']:.2f}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def eval_section(run: RunFolder) -> str:
    """Every eval/<name>.json as tables, each followed by the pictures in eval/<name>/ (confusion matrix,
    accuracy–coverage, closest pairs, ...); then any other picture under eval/. A file still being
    written is listed as such (`RunFolder.read_evals` would skip it)."""
    folder = run.sub("eval")
    if not folder.is_dir():
        return ""
    parts, shown = [], set()
    for path in sorted(folder.glob("*.json")):
        pngs = sorted((folder / path.stem).glob("*.png")) if (folder / path.stem).is_dir() else []
        shown.update(pngs)
        parts.append(json_block(path) + pictures(pngs))
    parts.append(pictures([p for p in sorted(folder.rglob("*.png")) if p not in shown and not _temporary(run, p)]))
    return section("Evaluation", "".join(parts)) if any(parts) else ""


def pictures(pngs: list[Path]) -> str:
    figs = "".join(figure(file_bytes(p), caption_for(p), kind="plot") for p in pngs)
    return f'<div class="figs">{figs}</div>' if figs else ""


def json_block(path: Path, *, collapsed: bool = False) -> str:
    """One JSON file: its tables and any accuracy–coverage curve it holds."""
    data = read_json(path)
    if data is None:
        return f'<h3>{escape(path.name)}</h3><p class="note">not readable as JSON (still being written?)</p>'
    plots = [figure(curves.coverage_figure(name, cov, acc), f"{path.stem}: {name}", kind="plot")
             for name, cov, acc in curves.coverage_curves(data)]
    inner = json_tables(data) + (f'<div class="figs">{"".join(plots)}</div>' if plots else "")
    title = data.get("title", path.stem) if isinstance(data, dict) else path.stem
    if collapsed:
        return f"<details><summary>{escape(path.name)}</summary>{inner}</details>"
    return f'<h3>{escape(str(title))} <small>{escape(path.name)}</small></h3>{inner}'


def picture_sections(run: RunFolder) -> list[str]:
    """One section per other folder holding pictures (explain/<command>/, edit/, ...), with captions."""
    run_dir = run.path
    folders = sorted({p.parent for p in run_dir.rglob("*.png") if _is_extra(run, p)})
    out = []
    for folder in folders:
        pngs = [p for p in sorted(folder.glob("*.png")) if _is_extra(run, p)]
        jsons = "".join(json_block(j, collapsed=True) for j in sorted(folder.glob("*.json")))
        name = folder.relative_to(run_dir).as_posix()
        out.append(section(f"Pictures: {name}", pictures(pngs) + jsons))
    return out


def _is_extra(run: RunFolder, png: Path) -> bool:
    """Not shown elsewhere: tracker logs, eval/ (its own section), the placed plots and step grids."""
    if _temporary(run, png) or png.is_relative_to(run.sub("eval")) or (png.parent == run.sub("samples") and png.name.startswith("step_")):
        return False
    rel = png.relative_to(run.path)
    placed = {run.sub("plots", "loss.png"), run.sub("samples", "final.png"), run.sub("samples", "trajectory.png"),
              run.sub("plots", "guidance_frontier.png"), *run.sub("samples", "guidance").glob("w*.png")}  # guidance_section
    return len(rel.parts) > 1 and rel.parts[0] not in SKIP_DIRS and png not in placed  # loose files at the top (a screenshot of this page, say) are not run outputs


def _temporary(run: RunFolder, path: Path) -> bool:
    """Inside a hidden or temp folder (`eval/.confusion.x1y2.tmp/`, left by a kill -9 mid-write): not a result."""
    return any(part.startswith(".") or part.endswith(run_files.TEMP_SUFFIX) for part in path.relative_to(run.path).parts)


def config_section(folder: RunFolder) -> str:
    """Every training option, as saved in config.json (the run can be repeated from it)."""
    items = "".join(f"<div><span>{escape(str(k))}</span><b>{escape(fmt(v))}</b></div>"
                    for k, v in saved_config(folder).items())
    name = folder.config_path.name
    return section("Configuration", f'<div class="config">{items}</div>',
                   note=f"{name}: `difflab train --config RUN/{name}` repeats this run")


__all__ = ["build_page", "write_report"]

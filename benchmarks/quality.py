"""The accuracy–fidelity frontier of a run: sampler × guidance method × strength, on one fixed yardstick.

    python benchmarks/quality.py RUN [--n 1000] [--json q.json] [--plot frontier.png] [--quick]
    python benchmarks/quality.py --train [--steps N]     # trains the default model first (`difflab train`)
    python benchmarks/quality.py RUN --rows '[{"steps": 10, "autoguidance": 4}]' --targets 0.9,2,0.8  # these rows only
    python benchmarks/quality.py RUN --seeds 3        # each row on 3 sample seeds: means, FD/floor's range beside it

Each row samples n class-conditional images (n/10 per class, seed 0 or `--seed`; a text run asks each one the
caption of a random training image of its class, so they are a draw from it; `--captions test`: of a held-out
image) and measures them with
`difflab.evaluation.quality.QualityProbe`: judge accuracy and confidence, judge-space FD against a fixed
set of 2,000 real train images divided by the real-vs-real floor (n other real images), KID,
precision/recall (k = 3), mean within-class diversity (real: the floor's), NFE per image and images/s.
The run's default sampler is marked `*`; the last lines check the issue-16 targets on it
(accuracy >= 99%, FD <= 1.5x floor, recall >= 0.8) and on the null branch (`--uncond`: confidence >= 95%).
An unconditional run (`difflab train --no-conditional`) gets rows per autoguidance strength instead, judged by
confidence, FD/floor and P/R, and the unconditional target (confidence >= 95%).

Guidance rows: `cfg` classifier-free on every step; `cfg[lo,hi]` only where t/T lies in [lo, hi]
(Kynkäänniemi et al. 2024); `cfg+r` with CFG rescale φ = 0.7 (Lin et al. 2024); `auto` autoguidance by the
run's guide network (an early EMA snapshot; Karras et al. 2024); `none` w = 1 (plain conditional); `+filter`: the
run's filter classifier draws again the images it rejects (`sampling/filter.py`; NFE counts the redraws).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from difflab.evaluation.prompts import drawn_prompts
from difflab.evaluation.quality import QualityProbe
from difflab.precision import cpu_has_native_bf16
from difflab.run import Run
from difflab.sampling import Condition, class_labels
from difflab.sampling.filter import Redraws

FULL, HIGH, MID = (0.0, 1.0), (0.5, 1.0), (0.2, 0.7)
REDRAWS = 3  # the filter rows: TrainConfig's default


def grid(run: Run, quick: bool, only: list[dict] | None = None) -> list[dict]:
    """Overrides of the run's sampler, one per row: its default first, then each guidance method at a few
    strengths on the run's solver, then more solver steps at the default guidance."""
    cfg = {"guidance_method": "cfg", "guidance_rescale": 0.0, "autoguidance": 1.0, "redraws": 0}  # CFG alone, no filter
    rows = [{}, {**cfg, "guidance": 1.0}]
    if only is not None:  # --rows: the default and these (Sampler overrides of the run's own sampler)
        return unique_default_first(run, [{}, *only])
    for interval, strengths in ((FULL, (1.5, 2.0, 3.0)), (HIGH, (1.5, 2.0, 2.5, 3.0)), (MID, (2.0, 3.0, 5.0))):
        rows += [{**cfg, "guidance": w, "guidance_interval": interval} for w in (strengths[:2] if quick else strengths)]
    rows += [{**cfg, "guidance": 3.0, "guidance_interval": FULL, "guidance_rescale": 0.7}]
    if run.guide is not None:
        rows += [{**cfg, "guidance_method": "auto", "guidance": w, "guidance_interval": FULL}
                 for w in ((2.0,) if quick else (1.5, 2.0, 3.0))]
        both = ((1.6, 3.0),) if quick else ((1.4, 3.0), (1.6, 2.0), (1.6, 3.0), (2.0, 3.0))
        rows += [{**cfg, "guidance": w, "guidance_interval": HIGH, "autoguidance": a}  # CFG + autoguidance on top
                 for w, a in both]
    if run.filter is not None:  # the filter on the high-noise CFG row: what it buys at each strength
        rows += [{**cfg, "guidance": w, "guidance_interval": HIGH, "redraws": REDRAWS}
                 for w in ((1.0, 1.3) if quick else (1.0, 1.3, 1.5, 2.0))]
    if not quick:
        rows += [{"solver": "dpm++", "steps": 20}, {"solver": "ddim", "steps": 50}]
    return unique_default_first(run, rows)


def unconditional_grid(run: Run, quick: bool) -> list[dict]:
    """An unconditional model has nothing to guide towards: its rows are autoguidance strengths (CFG's `w` does
    nothing there) and more solver steps."""
    strengths = (1.0, 3.0) if quick else (1.0, 2.0, 3.0, 5.0)
    rows = [{}] + [{"autoguidance": a, "redraws": 0} for a in strengths] + ([] if quick else [{"steps": 20}])
    if run.filter is not None:
        rows += [{"autoguidance": a, "redraws": REDRAWS} for a in strengths]
    return unique_default_first(run, rows)


def null_rows(run: Run) -> list[tuple[str, dict, bool]]:
    """The null branch (a class model's unconditional samples): plain, with autoguidance, with the filter, both;
    `(name, Sampler overrides, whether the run has what it needs)`."""
    plain = {"guidance_method": "cfg", "guidance": 1.0, "autoguidance": 1.0, "redraws": 0}
    auto = {"guidance_method": "auto", "guidance": 5.0, "guidance_interval": FULL, "redraws": 0}
    has_guide, has_filter = run.guide is not None, run.filter is not None
    return [("null branch", plain, True), ("null branch, auto 5", auto, has_guide),
            ("null branch, filter", {**plain, "redraws": REDRAWS}, has_filter),
            ("null branch, auto 5 + filter", {**auto, "redraws": REDRAWS}, has_guide and has_filter)]


def unique_default_first(run: Run, rows: list[dict]) -> list[dict]:
    default = run.sampler()
    unique, seen = [], set()
    for r in rows:  # the default appears once, marked
        key = run.sampler(**r)
        if key not in seen:
            seen.add(key)
            unique.append(r)
    return sorted(unique, key=lambda r: run.sampler(**r) != default)  # stable: the default row first


def label(s, filtered: bool = False) -> str:
    """"cfg[0.5,1]+auto3+filter": the method and its interval, CFG rescale, autoguidance on top, the filter;
    "none" for none of them."""
    lo, hi = s.guidance_interval
    name = "" if s.guidance == 1.0 else s.guidance_method + ("" if (lo, hi) == FULL else f"[{lo:g},{hi:g}]")
    name += f"+r{s.guidance_rescale:g}" if s.guidance_rescale and s.guidance != 1.0 else ""
    name += f"+auto{s.autoguidance:g}" if s.autoguidance != 1 else ""
    name += "+filter" if filtered else ""
    return name.lstrip("+") or "none"


def nfe(s, num_timesteps: int) -> int:
    """Network evaluations per image: one per step, two where guidance runs (CFG: both branches; auto: the guide)."""
    guidance = s.guidance_for(num_timesteps)
    extra = 1 if s.autoguidance != 1 else 0  # the guide, on every step
    return sum((2 if guidance.active(torch.tensor([t])) else 1) + extra for t in s.timesteps(num_timesteps))


def conditions(run: Run, labels: torch.Tensor, seed: int, split: str = "train") -> tuple[Condition, Condition]:
    """The samples' condition and the null branch's (unconditional samples of a conditional model): class ids and
    the null class, or for a text run a caption drawn per label (`drawn_prompts`: the caption of a random training
    image of the class, so the samples are a draw from it, as FD and recall need) and the empty prompt."""
    cond = run.condition(prompts=drawn_prompts(run, labels, seed=seed, split=split)) if run.is_text else run.condition(labels)
    return cond, Condition(cond.null(), cond.num_classes)


def measure(run: Run, probe: QualityProbe, settings: dict, cond: Condition, labels, seed: int = 0) -> dict:
    s = run.sampler(**settings, seed=seed)
    filtering = run.filter if s.redraws else None
    tally = Redraws()
    started = time.perf_counter()
    images = s.generate(run.model, run.alphas_cumprod, cond, guide=run.guide if s.needs_guide else None,
                        filter=filtering, tally=tally)
    seconds = time.perf_counter() - started
    r = probe.measure(images, labels)
    ran = s if cond.kind != "none" else s.replace(guidance=1.0)  # no class to guide towards: CFG never runs
    per_draw = nfe(ran, len(run.alphas_cumprod))
    return {"solver": s.solver, "steps": s.steps, "method": label(ran, filtering is not None), "w": ran.guidance, **r,
            "nfe": round(per_draw * (1 + tally.draws / len(images)), 1), "redrawn": tally.redrawn,
            "img_per_s": len(images) / seconds, "default": s == run.sampler(seed=seed)}


def measure_seeds(run: Run, probe: QualityProbe, settings: dict, condition, labels, seeds: range) -> dict:
    """`measure` on each sample seed (`condition(seed)`: what that seed's samples are conditioned on), pooled: the
    mean of every figure, FD/floor's per-seed values kept. One seed's FD/floor moves by up to ~0.6 at 2-3x the
    floor (benchmarks/RESULTS.md), too much to rank close rows."""
    return pool([measure(run, probe, settings, condition(seed), labels, seed) for seed in seeds])


def pool(results: list[dict]) -> dict:
    """Rows of one setting on several seeds → one row: each figure that differs between seeds is their mean;
    words, flags and what every seed shares (solver steps, w, n, the floor) are kept as they are."""
    def pooled(key: str, value):
        values = [r[key] for r in results]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or all(v == value for v in values):
            return value
        return sum(values) / len(values)

    return {**{k: pooled(k, v) for k, v in results[0].items()}, "fd_ratio_seeds": [r["fd_ratio"] for r in results]}


def header(run: Run, n: int, kind: str = "", seed: int = 0, seeds: int = 1) -> str:
    last = (run.folder.read_metrics() or [{}])[-1]
    which = f"seed {seed}" if seeds == 1 else f"seeds {seed}-{seed + seeds - 1}, means"
    return (f"run {run.path}{kind}: {last.get('step', '?')} steps; n = {n}, {which}; this CPU "
            f"{'has' if cpu_has_native_bf16() else 'lacks'} native bf16")


def table(rows: list[dict]) -> str:
    head = ("| | solver | method | w | accuracy | confidence | FD/floor | KID | precision | recall | diversity "
            "| NFE | img/s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        acc = f"{r['accuracy']:.3f}" if "accuracy" in r else "—"
        lines.append(f"| {'*' if r['default'] else ''} | {r['solver']} {r['steps']} | {r['method']} | {r['w']:g} | {acc} "
                     f"| {r['confidence']:.3f} | {fd_cell(r)} | {r['kid']:.4f} | {r['precision']:.3f} "
                     f"| {r['recall']:.3f} | {r['diversity']:.2f} | {r['nfe']:.1f} | {r['img_per_s']:.0f} |")
    r = rows[0]
    lines.append(f"\nreal floor (n={r['n']} other real images vs the {r['n_reference']}-image reference): FD {r['fd_floor']:.3f}, "
                 f"precision {r['precision_floor']:.3f}, recall {r['recall_floor']:.3f}, diversity {r['diversity_floor']:.2f}, "
                 f"confidence {r['confidence_floor']:.3f}"
                 + (f"; judge accuracy on held-out real images in this class mix {r['accuracy_real']:.3f}"
                    if "accuracy_real" in r else ""))
    return "\n".join(lines)


def fd_cell(r: dict) -> str:
    """FD/floor, with its range over seeds when there were several: "1.88 (1.78-1.97)"."""
    seeds = r.get("fd_ratio_seeds", [])
    return f"{r['fd_ratio']:.2f}" + (f" ({min(seeds):.2f}-{max(seeds):.2f})" if len(seeds) > 1 else "")


def targets(rows: list[dict], uncond: dict | None, goal=(0.99, 1.5, 0.8)) -> list[str]:
    """The issue-16 targets on the default row (`goal`: accuracy >=, FD/floor <=, recall >=) and the null branch."""
    acc, fd, rec = goal
    out = []
    for r in rows:
        if r["default"]:
            ok = r["accuracy"] >= acc and r["fd_ratio"] <= fd and r["recall"] >= rec
            out.append(f"default sampler ({r['method']} w={r['w']:g}): accuracy {r['accuracy']:.3f} (>= {acc:g}), "
                       f"FD/floor {r['fd_ratio']:.2f} (<= {fd:g}), recall {r['recall']:.3f} (>= {rec:g}): "
                       f"{'MET' if ok else 'NOT MET'}")
    if uncond is not None:
        out.append(f"null branch ({uncond['method']} w={uncond['w']:g}): confidence {uncond['confidence']:.3f} (>= 0.95): "
                   f"{'MET' if uncond['confidence'] >= 0.95 else 'NOT MET'}; FD/floor {uncond['fd_ratio']:.2f}")
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    methods = sorted({r["method"] for r in rows})
    for m in methods:
        pts = sorted((r for r in rows if r["method"] == m and (r["solver"], r["steps"]) == (rows[0]["solver"], rows[0]["steps"])),
                     key=lambda r: r["w"])
        ax.plot([r["fd_ratio"] for r in pts], [r["accuracy"] for r in pts], "o-", label=m, ms=4)
        for r in pts:
            ax.annotate(f"{r['w']:g}", (r["fd_ratio"], r["accuracy"]), fontsize=7, xytext=(3, 2), textcoords="offset points")
    d = next((r for r in rows if r["default"]), None)
    if d:
        ax.plot([d["fd_ratio"]], [d["accuracy"]], "k*", ms=14, label="default")
    ax.axvline(1.5, color="grey", ls=":", lw=1)
    ax.axhline(0.99, color="grey", ls=":", lw=1)
    ax.set_xlabel("FD / real floor (lower: closer to the data)")
    ax.set_ylabel("judge accuracy")
    ax.set_title("accuracy–fidelity frontier (labels: guidance w)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def train_default(steps: int | None) -> Path:
    out = Path(tempfile.mkdtemp()) / "run"
    cmd = ["difflab", "train", "--out", str(out), "--no-progress"] + (["--steps", str(steps)] if steps else [])
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", nargs="?")
    p.add_argument("--train", action="store_true", help="train the default model first (`difflab train`)")
    p.add_argument("--steps", type=int, help="with --train: the step budget (default: difflab's)")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0, help="the samples' seed (the reference set does not move)")
    p.add_argument("--seeds", type=int, default=1, help="sample seeds per row, from --seed on: figures are their means")
    p.add_argument("--quick", action="store_true", help="fewer rows")
    p.add_argument("--captions", choices=("train", "test"), default="train",
                   help="text runs: draw each sample's caption from training images or held-out ones")
    p.add_argument("--no-null", action="store_true", help="skip the null branch's rows (the unconditional target)")
    p.add_argument("--rows", type=json.loads, help="JSON list of Sampler overrides: measure the default and these only")
    p.add_argument("--targets", default="0.99,1.5,0.8", help="accuracy >=, FD/floor <=, recall >= for the default row")
    p.add_argument("--json")
    p.add_argument("--plot")
    args = p.parse_args()
    goal = tuple(float(v) for v in args.targets.split(","))
    if not args.run and not args.train:
        p.error("give a RUN folder or --train")
    if args.seeds < 1:
        p.error("--seeds is a count of sample seeds, at least 1")
    run = Run.load(train_default(args.steps) if args.train else args.run)
    probe = QualityProbe(run.config.dataset, data_dir=run.config.data_dir, image_size=run.config.image_size)
    if not run.num_classes:
        return unconditional(run, probe, args)
    labels = class_labels(run.num_classes, args.n // run.num_classes)
    seeds = range(args.seed, args.seed + args.seeds)
    drawn = {seed: conditions(run, labels, seed, args.captions) for seed in seeds}  # a text run draws its captions per sample seed
    rows = []
    for settings in grid(run, args.quick, args.rows):
        rows.append(measure_seeds(run, probe, settings, lambda seed: drawn[seed][0], labels, seeds))
        print(f"  {rows[-1]['method']:>14} w={rows[-1]['w']:<4g} acc {rows[-1]['accuracy']:.3f} "
              f"FD/floor {rows[-1]['fd_ratio']:.2f} recall {rows[-1]['recall']:.3f}", file=sys.stderr, flush=True)
    nulls = []
    for name, settings, needs in () if args.no_null else null_rows(run):
        if needs:
            nulls.append({**measure_seeds(run, probe, settings, lambda seed: drawn[seed][1], None, seeds),
                          "method": name})
    which = "training" if args.captions == "train" else "held-out"
    kind = f" (text: each sample asks the caption of a random {which} image of its class)" if run.is_text else ""
    print(header(run, args.n, kind, seed=args.seed, seeds=args.seeds))
    print(table(rows))
    for u in nulls:
        print(f"{u['method']}: confidence {u['confidence']:.3f}, FD/floor {u['fd_ratio']:.2f}, recall {u['recall']:.3f}, "
              f"NFE {u['nfe']:g}")
    best_null = max(nulls, key=lambda u: u["confidence"]) if nulls else None
    print("\n".join(targets(rows, best_null, goal)))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "null": nulls}, indent=1, default=str))
    if args.plot:
        plot(rows, Path(args.plot))
        print(f"wrote {args.plot}")


def unconditional(run: Run, probe: QualityProbe, args) -> None:
    """An unconditional run: judge confidence, FD/floor, P/R per autoguidance strength; the target is the
    issue-16 one for unconditional samples (confidence >= 0.95)."""
    cond = Condition.unconditional(args.n)
    seeds = range(args.seed, args.seed + args.seeds)
    rows = []
    for settings in unconditional_grid(run, args.quick):
        rows.append(measure_seeds(run, probe, settings, lambda seed: cond, None, seeds))
        print(f"  {rows[-1]['method']:>14} {rows[-1]['solver']} {rows[-1]['steps']}: confidence "
              f"{rows[-1]['confidence']:.3f} FD/floor {rows[-1]['fd_ratio']:.2f}", file=sys.stderr, flush=True)
    print(header(run, args.n, " (unconditional)", args.seed, args.seeds))
    print(table(rows))
    d = next(r for r in rows if r["default"])
    print(f"default sampler ({d['method']}): confidence {d['confidence']:.3f} (>= 0.95; real images: "
          f"{d['confidence_floor']:.3f}): {'MET' if d['confidence'] >= 0.95 else 'NOT MET'}; FD/floor {d['fd_ratio']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1, default=str))
    if args.plot:
        print("--plot draws the accuracy-FD frontier of a class-conditional run; an unconditional run has no accuracy")


if __name__ == "__main__":
    main()

"""The lines a person reads first from an evaluation result; everything else is in its JSON."""

from __future__ import annotations


def suite_lines(r: dict, *, width: int = 100) -> list[str]:
    """The suite's result (`evaluate_run` / `evaluate_images`) as a short table."""
    lines = [f"{r['name']}: {r['n']} images vs {r['dataset']}  (judge on real held-out images: "
             f"{100 * r['judge_real_accuracy']:.1f}%)"]
    if r["labelled"]:
        per = " ".join(f"{k}:{100 * v:.0f}" for k, v in r["per_class_accuracy"].items())
        lines.append(f"  judge accuracy   {100 * r['accuracy']:6.1f}%   mean confidence {100 * r['mean_confidence']:.1f}%")
        row = f"  per class (%)    {per}"
        lines.append(row if len(row) <= width else row[:width - 1].rsplit(" ", 1)[0] + " …")  # never half an entry
    lines += _distribution_lines(r["distribution"], r["memorisation"])
    if "idk" in r:
        lines += _coverage_lines(r["idk"]["accuracy_at_coverage"])
    if "inception" in r:
        i = r["inception"]
        lines.append(f"  Inception FID {i['fid']:.2f}{_floor_note(i.get('fid_floor'), i.get('n_reference'))}  "
                     f"KID {i['kid_mean']:.4f}±{i['kid_std']:.4f}  IS {i['isc_mean']:.2f}")
    else:
        lines.append(f"  note: {r['inception_skipped']}")
    pictures = f" and pictures in {r['written'][:-5]}/" if r["eval_config"]["pictures"] else ""
    return [*lines, f"  wrote {r['written']}{pictures}"]


def _distribution_lines(d: dict, m: dict) -> list[str]:
    rows = [("FD (judge features)", d["fd"], d["floor_fd"], ".3f"),
            ("KID x1000", 1e3 * d["kid_mean"], 1e3 * d["floor_kid_mean"], ".3f"),
            ("precision", d["precision"], d["floor_precision"], ".3f"), ("recall", d["recall"], d["floor_recall"], ".3f"),
            ("IS analogue", d["is_mean"], d["floor_is_mean"], ".2f")]
    lines = [f"  {'metric':<22}{'generated':>10}{'real floor':>12}   (reference: a fixed {d['n_reference']} real train "
             f"images; floor: {d['n_floor']} other real images)"]
    lines += [f"  {label:<22}{value:>10{fmt}}{floor:>12{fmt}}" for label, value, floor, fmt in rows]
    lines.append(f"  KID std x1000 {1e3 * d['kid_std']:.3f};  too close to a train image: "
                 f"{100 * m['pixel']['fraction_closer_than_test']:.1f}% (pixels), "
                 f"{100 * m['feature']['fraction_closer_than_test']:.1f}% (features)  [~5% = like real test images]")
    return lines


def _floor_note(floor, n_reference) -> str:
    """" (real floor 0.90, ref 2000)" beside an FD; older results without a floor say so."""
    ref = f", ref {n_reference}" if n_reference is not None else ""
    return f" (real floor {floor:.2f}{ref})" if floor is not None else f" (no real floor measured{ref})"


def _coverage_lines(table: dict) -> list[str]:
    covs = list(next(iter(table.values())))
    lines = [f"  {'accuracy at coverage':<22}" + "".join(f"{float(c) * 100:>7.0f}%" for c in covs)]
    return lines + [f"  {rule:<22}" + "".join(f"{100 * a:>7.1f}%" for a in accs.values()) for rule, accs in table.items()]


def prompt_lines(result: dict, source: str) -> list[str]:
    """`evaluate_prompts`' result: accuracy per prompt set (trained captions, unseen paraphrases or held-out
    captions), and caption retrieval where the run's captions are per image."""
    lines = [f"prompts of {source}: {result['per_prompt']} samples per prompt, {result['solver']} "
             f"{result['steps']} steps, guidance {result['guidance']:g}"]
    for name, r in result["sets"].items():
        clip = f"   CLIP score {r['clip_score']:.2f}" if "clip_score" in r else ""
        lines.append(f"  {name:<8} {r['prompts']:>3} prompts   judge accuracy {100 * r['accuracy']:5.1f}%   "
                     f"confidence {100 * r['mean_confidence']:5.1f}%{clip}")
        if name in result.get("retrieval", {}):
            lines += _retrieval_lines(result["retrieval"][name])
    if "clip_skipped" in result:
        lines.append(f"  note: {result['clip_skipped']}")
    return lines


def _retrieval_lines(score: dict) -> list[str]:
    """One set's caption retrieval (`evaluation/retrieval.py`) beside real images and chance."""
    def pair(r: dict) -> str:
        return f"{100 * r['recall_at_1']:.1f}% / {100 * r['recall_at_5']:.1f}%"

    floor, same = score["real_floor"], score.get("real_same_captions")
    also = f"real images of these captions {pair(same)}; " if same else ""
    return [f"           caption retrieval R@1 / R@5 among {score['candidates']}: {pair(score['generated'])}",
            f"             {also}held-out real {pair(floor)} among {floor['candidates']}; chance {pair(score['chance'])}"]


__all__ = ["prompt_lines", "suite_lines"]

"""Any evaluation/explanation JSON as HTML tables, so new metrics show up without report changes.

Shapes recognised: scalars (one key/value table), a dict of scalars (one row, e.g. per-class
accuracy), a matrix (a heat table, e.g. a confusion matrix), a list of dicts (one row each), and
nested dicts (a sub-table each). Anything else is shown as short JSON text.
"""

from __future__ import annotations

import json
import math
from html import escape

MAX_ROWS = 60  # longer lists are cut: the page is for looking, the JSON file holds everything
LABEL_KEYS = ("class_names", "classes", "labels")  # sibling keys that name a matrix's rows/columns
FD_KEYS = ("fd", "fid")  # Fréchet distances: shown with their real-vs-real floor and reference size beside them


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, bool, int, float))


def is_matrix(value) -> bool:
    """A non-empty list of equal-length lists of numbers."""
    return (isinstance(value, list) and len(value) > 1 and all(isinstance(r, list) and r for r in value)
            and len({len(r) for r in value}) == 1 and all(is_number(v) for r in value for v in r))


def fmt(value) -> str:
    """Numbers short enough to read (4 significant digits), everything else as text."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    if isinstance(value, list) and all(is_number(v) for v in value):
        if len(value) > 12:
            return f"{len(value)} values, {fmt(min(value))} … {fmt(max(value))}"
        return ", ".join(fmt(v) for v in value)
    if is_scalar(value):
        return str(value)
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:200] + " …"


def shade(value, low: float, high: float) -> str:
    """A background whose strength grows with the value (blue), for heat tables."""
    if not is_number(value) or high <= low:
        return ""
    strength = (value - low) / (high - low)
    return f' style="background: rgba(33, 102, 172, {0.08 + 0.8 * strength:.2f}); color: {"#fff" if strength > 0.6 else "#111"}"'


def fd_text(key: str, siblings: dict) -> str | None:
    """An FD with its floor: "3.2 (real floor 0.9, ref 2000)", from the keys beside it (`floor_fd` or
    `fd_floor`, `n_reference`); None when `key` is not an FD."""
    value = siblings.get(key)
    if key not in FD_KEYS or not is_number(value):
        return None
    floor = next((siblings[k] for k in (f"floor_{key}", f"{key}_floor") if is_number(siblings.get(k))), None)
    ref = f", ref {siblings['n_reference']}" if "n_reference" in siblings else ""
    return f"{fmt(value)} (real floor {fmt(floor)}{ref})" if floor is not None else f"{fmt(value)} (no real floor{ref})"


def cell(value, low: float = 0.0, high: float = 1.0, *, heat: bool = False, text: str | None = None) -> str:
    style = shade(value, low, high) if heat else ""
    return f"<td{style}>{escape(text if text is not None else fmt(value))}</td>"


def scalar_table(items: list[tuple[str, object]]) -> str:
    siblings = dict(items)
    rows = "".join(f"<tr><th>{escape(k)}</th>{cell(v, text=fd_text(k, siblings))}</tr>" for k, v in items)
    return f'<table class="kv">{rows}</table>'


def row_table(name: str, values: dict) -> str:
    """A dict of scalars as one row (class → accuracy); shaded when all values lie in [0, 1]."""
    heat = all(is_number(v) and 0 <= v <= 1 for v in values.values())
    head = "".join(f"<th>{escape(str(k))}</th>" for k in values)
    body = "".join(cell(v, heat=heat, text=fd_text(k, values)) for k, v in values.items())
    return f'<h4>{escape(name)}</h4><table class="grid"><tr>{head}</tr><tr>{body}</tr></table>'


def matrix_table(name: str, matrix: list[list], labels: list | None = None) -> str:
    """A heat table; rows are the true class and columns the prediction for a confusion matrix."""
    flat = [v for row in matrix for v in row]
    low, high = min(flat), max(flat)
    cols = labels if labels and len(labels) == len(matrix[0]) else list(range(len(matrix[0])))
    rows = labels if labels and len(labels) == len(matrix) else list(range(len(matrix)))
    corner = "true \\ predicted" if "confusion" in name.lower() else ""
    head = f"<tr><th>{corner}</th>" + "".join(f"<th>{escape(str(c))}</th>" for c in cols) + "</tr>"
    body = "".join(f"<tr><th>{escape(str(r))}</th>" + "".join(cell(v, low, high, heat=True) for v in row) + "</tr>"
                   for r, row in zip(rows, matrix[:MAX_ROWS]))
    return f'<h4>{escape(name)}</h4><table class="grid matrix">{head}{body}</table>'


def records_table(name: str, records: list[dict]) -> str:
    """A list of dicts as one row per item, columns the union of their keys."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    head = "".join(f"<th>{escape(str(k))}</th>" for k in keys)
    body = "".join("<tr>" + "".join(cell(r.get(k, ""), text=fd_text(k, r)) for k in keys) + "</tr>"
                   for r in records[:MAX_ROWS])
    more = f"<p class=note>{len(records) - MAX_ROWS} more rows in the JSON file</p>" if len(records) > MAX_ROWS else ""
    return f'<h4>{escape(name)}</h4><table class="grid">{head and "<tr>" + head + "</tr>"}{body}</table>{more}'


def json_tables(data, *, depth: int = 0) -> str:
    """HTML tables for one parsed JSON document (see the module docstring for the shapes)."""
    if not isinstance(data, dict):
        return scalar_table([("value", data)]) if is_scalar(data) else f"<pre>{escape(fmt(data))}</pre>"
    labels = next((data[k] for k in LABEL_KEYS if isinstance(data.get(k), list)), None)
    simple = [(k, v) for k, v in data.items() if is_scalar(v) or (isinstance(v, list) and not is_matrix(v)
                                                                  and not _is_records(v))]
    parts = [scalar_table(simple)] if simple else []
    for key, value in data.items():
        if is_matrix(value):
            parts.append(matrix_table(key, value, labels))
        elif _is_records(value):
            parts.append(records_table(key, value))
        elif isinstance(value, dict) and value and all(is_scalar(v) for v in value.values()):
            parts.append(row_table(key, value))
        elif isinstance(value, dict) and value:
            inner = json_tables(value, depth=depth + 1) if depth < 3 else f"<pre>{escape(fmt(value))}</pre>"
            parts.append(f'<h4>{escape(key)}</h4><div class="nested">{inner}</div>')
    return "".join(parts)


def _is_records(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


__all__ = ["fmt", "json_tables"]

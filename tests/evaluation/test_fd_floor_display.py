"""Every FD a person reads (CLI summary, HTML report tables) has its real-vs-real floor and reference size beside it."""

from __future__ import annotations

import sys
import types

import torch

from difflab.evaluation.fidelity import inception_metrics
from difflab.evaluation.summary import suite_lines
from difflab.report.tables import json_tables

DISTRIBUTION = {"n_generated": 100, "n_reference": 2000, "n_floor": 100, "fd": 3.2, "floor_fd": 0.9,
                "kid_mean": 0.01, "kid_std": 0.001, "floor_kid_mean": 0.002, "floor_kid_std": 0.001,
                "precision": 0.7, "recall": 0.5, "floor_precision": 0.8, "floor_recall": 0.8,
                "is_mean": 8.0, "is_std": 0.1, "floor_is_mean": 9.0, "floor_is_std": 0.1}
MEMORISATION = {"pixel": {"fraction_closer_than_test": 0.05}, "feature": {"fraction_closer_than_test": 0.04}}


def result(**extra) -> dict:
    return {"name": "e", "n": 100, "dataset": "mnist5k", "judge_real_accuracy": 0.99, "labelled": False,
            "distribution": DISTRIBUTION, "memorisation": MEMORISATION, "eval_config": {"pictures": False},
            "written": "eval/e.json", **extra}


def test_cli_summary_states_the_reference_and_the_floor_of_each_fd():
    inception = {"fid": 12.5, "fid_floor": 4.25, "n_reference": 2000, "kid_mean": 0.01, "kid_std": 0.001,
                 "isc_mean": 2.0, "isc_std": 0.1}
    text = "\n".join(suite_lines(result(inception=inception)))
    assert "reference: a fixed 2000 real train images; floor: 100 other real images" in text
    assert "Inception FID 12.50 (real floor 4.25, ref 2000)" in text
    fd_row = next(line for line in text.splitlines() if "FD (judge features)" in line)
    assert fd_row.split()[-2:] == ["3.200", "0.900"]  # generated, then its floor
    older = "\n".join(suite_lines(result(inception={**inception, "fid_floor": None})))
    assert "Inception FID 12.50 (no real floor measured, ref 2000)" in older


def test_report_tables_put_the_floor_beside_every_fd():
    html = json_tables({"distribution": DISTRIBUTION})
    assert "3.2 (real floor 0.9, ref 2000)" in html
    probe = json_tables({"fd": 1.5, "fd_floor": 1.25, "n_reference": 2000, "recall": 0.8})  # the quality probe's keys
    assert "1.5 (real floor 1.25, ref 2000)" in probe
    rows = json_tables({"sweep": [{"w": 1, "fd": 2.0, "fd_floor": 1.0}, {"w": 3, "fd": 6.0, "fd_floor": 1.0}]})
    assert "6 (real floor 1)" in rows and "(no real floor" not in rows
    assert "7 (no real floor)" in json_tables({"fd": 7.0})  # a bare FD says that it has none


def test_inception_fid_comes_with_its_floor(tmp_path, monkeypatch):
    """torch-fidelity is faked: the floor images go in as input1 against the same reference as input2."""
    calls = []

    def calculate_metrics(*, input1, input2, **options):
        calls.append((len(input1), len(input2), options.get("isc", False)))
        fid = 4.0 if len(input1) == 7 else 10.0
        return {"frechet_inception_distance": fid, "kernel_inception_distance_mean": 0.1,
                "kernel_inception_distance_std": 0.01, "inception_score_mean": 2.0, "inception_score_std": 0.1}

    monkeypatch.setitem(sys.modules, "torch_fidelity", types.SimpleNamespace(calculate_metrics=calculate_metrics))
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"x")
    images = lambda n: torch.zeros(n, 1, 8, 8)
    out = inception_metrics(images(5), images(20), weights=weights, floor=images(7))["inception"]
    assert (out["fid"], out["fid_floor"], out["n_reference"], out["n_floor"]) == (10.0, 4.0, 20, 7)
    assert calls == [(5, 20, True), (7, 20, False)]

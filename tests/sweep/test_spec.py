"""Sweep specs: grid and list expansion, run names, and one-line errors for bad specs."""

import pytest

from difflab.errors import UserError
from difflab.sweep import SweepSpec, run_name, sort_key, write_results


def spec(**tables):
    return SweepSpec.from_dict(tables, source="s.toml")


def test_grid_is_a_cartesian_product_on_top_of_base_plus_listed_runs():
    s = spec(base={"steps": 5, "batch_size": 16}, grid={"lr": [1e-3, 2e-3], "channels": [[8, 16], [16, 32]]},
             runs=[{"objective": "eps"}])
    assert [r.changes for r in s.runs] == [
        {"lr": 1e-3, "channels": [8, 16]}, {"lr": 1e-3, "channels": [16, 32]},
        {"lr": 2e-3, "channels": [8, 16]}, {"lr": 2e-3, "channels": [16, 32]}, {"objective": "eps"}]
    assert s.runs[1].config.channels == (16, 32) and s.runs[1].config.batch_size == 16
    assert s.runs[4].config.objective == "eps" and s.runs[4].config.lr == 2e-3  # base default
    assert s.varied == ("lr", "channels", "objective")
    assert s.runs[1].name == "001-lr=0.001,channels=16-32"
    assert s.evaluate.guidance == (3.0,) and s.evaluate.metric == "accuracy"


def test_no_grid_is_one_run_and_guidance_may_be_a_list():
    s = spec(base={"steps": 5}, evaluate={"guidance": [1, 3], "judge": False})
    assert len(s.runs) == 1 and s.runs[0].name == "000"
    assert s.evaluate.guidance == (1.0, 3.0) and s.evaluate.metric == "final_loss"


@pytest.mark.parametrize("tables, message", [
    ({"grid": {"lr": 0.1}}, "grid.lr must be a non-empty list"),
    ({"grid": {"channels": [8, 16]}}, r"channels = \[\[8, 16\]"),
    ({"grid": {"guidance": [1, 3]}}, r"under \[evaluate\]"),
    ({"grid": {"learning_rate": [1.0]}}, "unknown config key"),
    ({"grid": {"schedule": ["cosine", "quadratic"]}}, "unknown schedule 'quadratic'"),
    ({"gird": {}}, "unknown section"),
    ({"evaluate": {"metric": "fid"}}, "evaluate.metric 'fid'"),
    ({"evaluate": {"judge": False, "metric": "accuracy"}}, "evaluate.metric 'accuracy'"),
    ({"evaluate": {"guidance": [-1]}}, "evaluate.guidance"),
    ({"evaluate": {"stepz": 3}}, "unknown \\[evaluate\\] key"),
])
def test_bad_specs_name_the_value(tables, message):
    with pytest.raises(UserError, match=message):
        spec(**tables)


def test_run_names_are_safe_folder_names():
    assert run_name(7, {"dataset": "folder:/a b/c"}) == "007-dataset=folder__a_b_c"


def test_rows_sort_best_first():
    rows = [{"run": "a", "accuracy": 0.5}, {"run": "b", "accuracy": 0.9}, {"run": "c"}]
    assert [r["run"] for r in sorted(rows, key=sort_key("accuracy"))] == ["b", "a", "c"]
    rows = [{"run": "a", "final_loss": 0.5}, {"run": "b", "final_loss": 0.2}]
    assert [r["run"] for r in sorted(rows, key=sort_key("final_loss"))] == ["b", "a"]


def test_results_table_files(tmp_path):
    rows = [{"run": "000-lr=0.1", "lr": 0.1, "guidance": 3.0, "accuracy": 0.91234, "final_loss": 0.2},
            {"run": "001-lr=0.2", "lr": 0.2, "guidance": 3.0, "accuracy": 0.5, "final_loss": 0.1}]
    write_results(rows, ("lr",), "accuracy", tmp_path)
    md = (tmp_path / "results.md").read_text().splitlines()
    assert md[2] == "| run | lr | guidance | accuracy | final_loss |"
    assert md[4] == "| 000-lr=0.1 | 0.1 | 3 | 91.2% | 0.2 |"  # issue 20: 3 significant figures, rates in %
    assert (tmp_path / "results.csv").read_text().splitlines()[0] == "run,lr,guidance,accuracy,final_loss"
    assert (tmp_path / "results.png").stat().st_size > 1000

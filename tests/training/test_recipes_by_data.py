"""Recipes by data: chosen from the data's size, channels and count; the user's keys win; saved, never re-resolved."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from difflab.errors import UserError
from difflab.nn.spec import build
from difflab.training import recipes
from difflab.training.config import TrainConfig, config_diff
from difflab.training.recipes import explicit_keys, resolve_for_data, resolve_recipe


@pytest.mark.parametrize(("shape", "count", "name"), [
    ((1, 28, 28), 4_500, "28px-gray"),  # mnist5k
    ((1, 28, 28), 60_000, "28px-gray-large"),  # MNIST, Fashion-MNIST
    ((3, 32, 32), 3_300, "32px-colour"),  # emoji
    ((3, 32, 32), 50_000, "32px-colour-large"),  # CIFAR-10
    ((3, 64, 64), 900, "64px"),  # a folder at 64 px
    ((1, 96, 96), 900, "64px"),
])
def test_recipe_chosen_by_size_channels_and_count(shape, count, name):
    config, line = resolve_recipe(TrainConfig(), set(), shape, count)
    assert config.recipe == name and line.startswith(f"recipe {name} ({count:,} images of {'x'.join(map(str, shape))}")
    for key, value in recipes.by_name(name).values.items():
        assert getattr(config, key) == value, key


def test_every_row_sets_only_recipe_fields_and_makes_a_valid_config():
    for recipe in recipes.RECIPES:
        assert set(recipe.values) <= set(recipes.RECIPE_FIELDS), recipe.name
        config = TrainConfig(recipe=recipe.name, **recipe.values)
        build(config.model_spec((3, 32, 32), 10), None)  # attention levels that exist, widths the U-Net takes


def test_colour_recipe_values_reach_the_network():
    config, _ = resolve_recipe(TrainConfig(), set(), (3, 32, 32), 3_300)
    spec = config.model_spec((3, 32, 32), 9)
    assert spec.channels == (32, 64, 128) and spec.attention_levels == (2,) and config.lr == 1e-3


def test_mnist5k_default_config_is_unchanged_field_for_field():
    config, line = resolve_for_data(TrainConfig(), explicit_keys(None, {}))  # loads mnist5k: its real shape and count
    default = TrainConfig()
    assert config.recipe == "28px-gray" and "4,500 images of 1x28x28" in line
    assert {k: v for k, v in config.to_dict().items() if k != "recipe"} == \
           {k: v for k, v in default.to_dict().items() if k != "recipe"}
    assert default.channels == (16, 32, 64) and default.batch_size == 64 and default.lr == 2e-3 and default.steps == 2000


def test_api_keywords_win_and_a_given_budget_replaces_the_recipes_steps():
    explicit = explicit_keys(None, {"channels": (16, 32, 64), "minutes": 3})
    config, line = resolve_recipe(TrainConfig(channels=(16, 32, 64), minutes=3), explicit, (3, 32, 32), 50_000)
    assert config.channels == (16, 32, 64)  # the default value, but chosen by the user: kept
    assert config.steps is None and config.minutes == 3  # no step cap the user did not ask for
    assert config.lr == 1e-3 and config.attention_levels == (2,) and config.ema_decay == 0.9995
    assert line.endswith("; yours kept: channels, steps")


def test_config_file_keys_win_even_at_default_values(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('channels = [16, 32, 64]\nlr = 0.002\n')
    loaded = TrainConfig.load(path)
    explicit = explicit_keys(loaded, {"batch_size": 8})  # a CLI flag on top of the file
    config, _ = resolve_recipe(loaded.replace(batch_size=8), explicit, (3, 64, 64), 500)
    assert (config.channels, config.lr, config.batch_size) == ((16, 32, 64), 2e-3, 8)
    assert config.steps == 4000 and config.attention_levels == ()  # 64px's level 3: not in the user's 3-level net


def test_cli_flags_are_explicit():
    from difflab.cli import build_parser
    from difflab.cli.options import config_overrides

    args = build_parser().parse_args(["train", "--dataset", "cifar10", "--lr", "0.002", "--recipe", "none"])
    overrides = config_overrides(args)
    assert overrides == {"dataset": "cifar10", "lr": 0.002, "recipe": "none"}
    config, line = resolve_recipe(TrainConfig(**overrides), explicit_keys(None, overrides), (3, 32, 32), 50_000)
    assert line == "" and config == TrainConfig(**overrides)  # "none": the defaults as they are


def test_a_named_recipe_needs_no_data_and_a_bad_name_is_one_line():
    config, line = resolve_for_data(TrainConfig(recipe="32px-colour"), {"recipe"})
    assert config.channels == (32, 64, 128) and line.startswith("recipe 32px-colour (yours: --recipe)")
    with pytest.raises(UserError, match=r"^unknown recipe 'huge'; use one of auto, none, 28px-gray-large"):
        TrainConfig(recipe="huge")


def test_a_config_built_in_python_keeps_what_differs_from_the_defaults():
    built = TrainConfig(channels=(8, 16), epochs=2.0)
    assert {"channels", "epochs", "steps"} <= explicit_keys(built, {})  # steps: None instead of the default
    config, _ = resolve_recipe(built, explicit_keys(built, {}), (3, 32, 32), 3_300)
    assert config.channels == (8, 16) and config.steps is None and config.epochs == 2.0


def test_a_saved_run_config_is_never_re_resolved(tmp_path):
    resolved, _ = resolve_recipe(TrainConfig(), set(), (3, 32, 32), 3_300)
    resolved.save(tmp_path / "config.json")
    old = resolved.to_dict()
    del old["recipe"], old["autoguidance"]  # a run saved before recipes: its values are what it trained with
    old["channels"] = [16, 32, 64]
    (tmp_path / "old.json").write_text(json.dumps(old))
    for name in ("config.json", "old.json"):
        saved = TrainConfig.load(tmp_path / name, saved_run=True)
        again, _ = resolve_for_data(saved, explicit_keys(saved, {}))
        assert again == saved and saved.recipe in ("32px-colour", "none")
    assert TrainConfig.load(tmp_path / "old.json", saved_run=True).channels == (16, 32, 64)


def test_an_unresolved_config_matches_its_resolved_run_folder():
    """A sweep compares its config (recipe "auto") with the run folder it trained: not a change."""
    saved, _ = resolve_recipe(TrainConfig(steps=10), {"steps"}, (3, 32, 32), 3_300)
    assert config_diff(saved.to_dict(), TrainConfig(steps=10).to_dict()) == []
    assert config_diff(TrainConfig(recipe="28px-gray").to_dict(), TrainConfig().to_dict()) == []
    assert config_diff(saved.to_dict(), TrainConfig(steps=10, lr=5e-4).to_dict()) == ["lr: 0.001 -> 0.0005"]


def _colour_folder(root: Path, per_class: int = 12) -> Path:
    for c, colour in enumerate([(200, 30, 30), (30, 30, 200)]):
        for i in range(per_class):
            (root / f"class{c}").mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), tuple(min(255, v + 3 * i) for v in colour)).save(root / f"class{c}" / f"{i}.png")
    return root


def test_resolved_values_in_config_json_and_resume_does_not_re_resolve(tmp_path, capsys, monkeypatch):
    import difflab

    tiny = dict(channels=(8, 16), steps=2, batch_size=8, log_every=1, warmup_steps=1, num_sample_grids=0,
                sample_steps=2, checkpoint_minutes=100.0)
    dataset = f"folder:{_colour_folder(tmp_path / 'shapes')}"
    run = difflab.train(dataset=dataset, out=tmp_path / "run", progress=False, evaluate=False, **tiny)
    saved = json.loads((run.path / "config.json").read_text())
    assert re.search(r"^recipe 32px-colour \(2\d images of 3x8x8: .*lr=0.001", capsys.readouterr().out, re.M)
    assert saved["recipe"] == "32px-colour" and saved["lr"] == 1e-3 and saved["steps"] == 2
    assert saved["attention_levels"] == []  # the recipe's level 2 does not exist in the user's 2-level net
    assert saved["channels"] == [8, 16] and saved["batch_size"] == 8  # the user's
    changed = tuple(r if r.name != "32px-colour" else recipes.Recipe(r.name, None, 48, 0, {"lr": 5e-4}) for r in recipes.RECIPES)
    monkeypatch.setattr(recipes, "RECIPES", changed)  # a newer table must not touch a run trained with the old one
    difflab.train(resume=run.path, steps=3, progress=False, evaluate=False)
    resumed = json.loads((run.path / "config.json").read_text())
    assert saved["image_size"] is None  # the folder's own size: what model.json records, and a resume writes down
    assert resumed == {**saved, "steps": 3, "image_size": 8} and "recipe" not in capsys.readouterr().out


def test_a_sweeps_keys_are_the_users_even_when_they_equal_the_defaults():
    """A swept value equal to TrainConfig's default (channels 16,32,64 on a colour set) is still the user's
    choice: the recipe must not replace it (the sweep's config comes from a dict, not from flags)."""
    from difflab.sweep import SweepSpec
    from difflab.training.recipes import explicit_keys, resolve_recipe

    spec = SweepSpec.from_dict({"base": {"dataset": "cifar10", "lr": 2e-3},
                                "grid": {"channels": [[16, 32, 64], [32, 64, 128]]}})
    first = spec.runs[0].config
    assert {"dataset", "lr", "channels"} <= explicit_keys(first, {})
    resolved, _ = resolve_recipe(first, explicit_keys(first, {}), (3, 32, 32), 50_000)
    assert resolved.channels == (16, 32, 64) and resolved.lr == 2e-3 and resolved.recipe == "32px-colour-large"

"""Recipes by data: the training defaults that fit a dataset's image size, channels and count.

`TrainConfig`'s own defaults ARE the "28px-gray" recipe: measured on mnist5k (its field comments say how), so a
default run is unchanged. "28px-gray-large" is measured on Fashion-MNIST (its comment says how); "32px-colour" was
measured on emoji and falls short (its comment); the other colour and 64 px rows are starting points, NOT measured
yet: modest widths a 2-core CPU can still train. A row lists only what differs from `TrainConfig`'s defaults.

`resolve_recipe` fills every recipe field the user did not give; what the user gave (a flag, a `--config`
file's key, an API keyword) always wins. The resolved values and the recipe's name are saved in `config.json`,
so `--resume` and `load_run` read them back and never resolve again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from difflab.training.config import TrainConfig

LARGE = 20_000  # train images from which a set gets the "-large" row: mnist5k's 4,500 and emoji's ~3,300 stay below
SMALL_SIZE = 48  # px: up to here the 28/32 px networks (3 levels down to 7-12 px); above, the 64 px one
BUDGET = ("steps", "epochs", "minutes")  # given together: one of them set by the user replaces a recipe's steps
RECIPE_FIELDS = ("channels", "blocks_per_level", "attention_levels", "batch_size", "lr", "warmup_steps",
                 "ema_decay", "steps", "guidance", "autoguidance", "sample_steps")  # what a row may set; everything
# else keeps TrainConfig's default
UNCONDITIONAL = {"autoguidance": 5.0}  # an unconditional run's sampler, under any row's own: with no class to guide
# towards, autoguidance is what sharpens it. On mnist5k, with the filter: judge confidence 0.968 (none: 0.935, 3: 0.953),
# FD 4.65x (none: 9.56x); benchmarks/RESULTS.md, "Rejection by a filter classifier"
AUTO, NONE = "auto", "none"  # TrainConfig.recipe: choose from the data | TrainConfig's defaults as they are


@dataclass(frozen=True)
class Recipe:
    name: str
    channels: int | None  # image channels it is for (None: any)
    max_size: int  # largest image side it is for, px
    min_count: int  # fewest train images it is for
    values: dict = field(default_factory=dict)  # TrainConfig fields that differ from its defaults
    why: str = ""

    def fits(self, channels: int, size: int, count: int) -> bool:
        return self.channels in (None, channels) and size <= self.max_size and count >= self.min_count


# 20 solver steps, measured on emoji (benchmarks/RESULTS.md, "Emoji: solver steps"): FD/floor 8.36x at 6, 5.90x at 12,
# 4.49x at 20, 4.07x at 30 (seeds 0-1 each): colour detail needs the steps; 20 keeps ~90% of 30's gain at 2/3 its cost
COLOUR_32 = {  # attention at level 2 (8 px of 32), cheap there; 2.2 M params (the digits' net: 0.5 M)
    "channels": (32, 64, 128), "attention_levels": (2,), "lr": 1e-3, "steps": 10_000, "ema_decay": 0.9995,
    "guidance": 1.6, "autoguidance": 3, "sample_steps": 20}  # guidance: the digits' default before the filter
RECIPES = (  # first row that fits wins; starting points except "28px-gray" (see the module docstring)
    Recipe("28px-gray-large", 1, SMALL_SIZE, LARGE, {"channels": (32, 64, 64), "steps": 12_000, "ema_decay": 0.9995,
                                                     "guidance": 1.3, "autoguidance": 3.5, "sample_steps": 20},
           "gray, 20k+ images: wider, 6x the steps, slower EMA, more autoguidance, 20 solver steps"),  # 0.84 M params
    # measured on Fashion-MNIST 60k, class-mix-weighted yardstick, filter on (benchmarks/RESULTS.md, "Fashion-MNIST:
    # 12,000 steps and 20 solver steps" and "... on four sample seeds"): 6,000 steps sampled in 10 solver steps FD
    # 2.84x / 2.60x the floor (seeds 0 / 1), in 20: 2.43x / 2.38x; 12,000 steps in 10: 2.35x (mean of seeds 0-1), in 20
    # with autoguidance 4: 1.93x (seeds 0-3), with 3.5: 1.71x (seeds 0-1: 1.81x, 2-3: 1.61x) at 94% recognised (real garments
    # 92.8%), recall 0.84. Autoguidance 2 or 6 (10 steps): 4.5x. Full MNIST: same row, unmeasured.
    Recipe("28px-gray", 1, SMALL_SIZE, 0, {}, "the defaults, measured on mnist5k"),
    Recipe("32px-colour-large", None, SMALL_SIZE, LARGE, COLOUR_32,
           "colour, 20k+ images: wider, attention at 8 px, more steps"),  # CIFAR-10
    Recipe("32px-colour", None, SMALL_SIZE, 0, COLOUR_32, "small colour set: wider, attention at 8 px, lower lr"),
    # emoji (~3,300), a folder of photos at --image-size 32. Measured on emoji (benchmarks/RESULTS.md, "Per dataset"):
    # 10,000 steps (83 min on 2 cores): 60.8% of samples recognised as their group (held-out real emoji in the same
    # class mix: 50.3%), FD 9.0x the floor, recall 0.87; 3,000 steps drew visibly vaguer shapes (52%). With captions
    # (--conditioning text, 82 min): training images' captions 56.0% / 1.41x / 0.89, held-out ones 47.3% / 3.50x / 0.77
    Recipe("64px", None, 10**9, 0, {"channels": (32, 64, 128, 128), "attention_levels": (3,), "batch_size": 32,
                                    "lr": 1e-3, "steps": 4000},
           "above 48 px: 4 levels, attention at the lowest, half the batch"),  # 3.3 M; larger photos: --image-size 64
)
NAMES = tuple(r.name for r in RECIPES)


def by_name(name: str) -> Recipe:
    return next(r for r in RECIPES if r.name == name)  # TrainConfig checked the name


def choose(image_shape: tuple[int, int, int], count: int) -> Recipe:
    """The recipe for `count` train images of `image_shape` (C, H, W)."""
    channels, height, width = image_shape
    return next(r for r in RECIPES if r.fits(channels, max(height, width), count))


def explicit_keys(config: TrainConfig | None, overrides: dict) -> set[str]:
    """The keys the user chose: `overrides`, plus a loaded file's keys (`TrainConfig.load` records them) or,
    for a config built in Python, the fields that differ from `TrainConfig`'s defaults."""
    from difflab.training.config import TrainConfig

    if config is None:
        given: Iterable[str] = ()
    elif getattr(config, "given_keys", None) is not None:
        given = config.given_keys
    else:
        default = TrainConfig()
        given = [f.name for f in dataclasses.fields(config) if getattr(config, f.name) != getattr(default, f.name)]
    return set(given) | set(overrides)


def resolve_recipe(config: TrainConfig, explicit: Iterable[str], image_shape: tuple[int, int, int] | None = None,
                   count: int = 0) -> tuple[TrainConfig, str]:
    """`config` with every recipe field not in `explicit` taken from its recipe, and the line that says which
    and why ("" when `config.recipe` is "none"). A budget the user gave replaces the recipe's steps.
    `image_shape` (C, H, W) and `count` (train images) choose the recipe when `config.recipe` is "auto"."""
    if config.recipe == NONE:
        return config, ""
    explicit = set(explicit)
    if config.recipe == AUTO:
        if image_shape is None:
            raise ValueError("recipe 'auto' needs the data's image_shape and count")
        recipe, c, h, w = choose(image_shape, count), *image_shape
        chosen = f"{count:,} images of {c}x{h}x{w}: {recipe.why}"
    else:
        recipe, chosen = by_name(config.recipe), "yours: --recipe"
    budget_given = bool(explicit & set(BUDGET))
    values = recipe.values if config.conditional else {**UNCONDITIONAL, **recipe.values}
    changes = {k: v for k, v in values.items() if k not in explicit and not (k in BUDGET and budget_given)}
    kept = sorted(k for k in values if k not in changes)
    if "attention_levels" in changes:  # the user's own `channels` may have fewer levels than the recipe's
        levels = len(changes.get("channels", config.channels))
        changes["attention_levels"] = tuple(i for i in changes["attention_levels"] if i < levels)
    line = (f"recipe {recipe.name} ({chosen})"
            + (": " + ", ".join(f"{k}={_show(v)}" for k, v in changes.items()) if changes else "")
            + (f"; yours kept: {', '.join(kept)}" if kept else ""))
    return config.replace(recipe=recipe.name, **changes), line


def resolve_for_data(config: TrainConfig, explicit: Iterable[str]) -> tuple[TrainConfig, str]:
    """`resolve_recipe` on the run's train split (loaded here for its shape and size; a named or "none"
    recipe needs no data)."""
    if config.recipe != AUTO:
        return resolve_recipe(config, explicit)
    from difflab.data import load_dataset

    data = load_dataset(config.dataset, data_dir=config.data_dir, image_size=config.image_size)
    return resolve_recipe(config, explicit, data.image_shape, len(data))


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else str(value)


__all__ = ["NAMES", "RECIPES", "Recipe", "choose", "explicit_keys", "resolve_for_data", "resolve_recipe"]

"""A judge for a new dataset trains with progress shown (a line per epoch when piped) and is cached by its data."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from difflab.data import ImageDataset
from difflab.evaluation.judge import JudgeProgress, train_judge


def _tiny(n: int = 64, seed: int = 0) -> ImageDataset:
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = (torch.rand(n, 1, 12, 12, generator=g) * 0.2 - 1 + labels.view(-1, 1, 1, 1) * 1.5).clamp(-1, 1)
    return ImageDataset(images, labels, ("dark", "light"), "tiny")


def test_piped_progress_is_one_line_per_epoch_with_time_left(capsys):
    shown = train_judge(_tiny(), epochs=3, batch_size=16, progress="judge for tiny")
    lines = capsys.readouterr().err.splitlines()  # captured: not a terminal, so no bar
    assert len(lines) == 3 and "\r" not in "".join(lines)
    for epoch, line in enumerate(lines, 1):
        assert re.fullmatch(rf"judge for tiny: epoch {epoch}/3, loss \d\.\d{{3}}, \d+s elapsed, about \d+s left", line)
    silent = train_judge(_tiny(), epochs=3, batch_size=16)
    assert capsys.readouterr().err == ""
    assert all(torch.equal(a, b) for a, b in zip(shown.state_dict().values(), silent.state_dict().values()))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_an_eta():
    out = _Terminal()
    bar = JudgeProgress("judge for tiny", 2, 8, stream=out)
    for step in range(8):
        bar.step()
        if step % 4 == 3:
            bar.epoch(step // 4 + 1, 0.5)
    bar.close()
    text = out.getvalue()
    assert "judge for tiny" in text and "8/8" in text and "<" in text and "epoch 2/2 loss 0.500" in text
    assert "about" not in text  # the per-epoch lines are for pipes only


def _folder(root: Path, value: int) -> Path:
    rng = np.random.default_rng(0)
    for c in range(2):
        (root / f"c{c}").mkdir(parents=True, exist_ok=True)
        for i in range(80):
            pixels = rng.integers(0, 60, (12, 12)) + 150 * c
            pixels[0, 0] = value
            Image.fromarray(pixels.astype(np.uint8)).save(root / f"c{c}" / f"{i}.png")
    return root


def test_load_judge_shows_progress_once_and_caches_by_data_not_name(tmp_path, monkeypatch, capsys):
    from difflab.evaluation import load_judge

    monkeypatch.setenv("DIFFLAB_CACHE", str(tmp_path / "cache"))
    spec = f"folder:{_folder(tmp_path / 'shapes', 0)}"
    judge = load_judge(spec)
    err = capsys.readouterr().err
    assert err.count(f"judge for {spec}: epoch ") == 8
    assert re.search(rf"judge for {re.escape(spec)}: \d+\.\d% right on \d+ held-out real images, trained in", err)
    assert load_judge(spec).accuracy == judge.accuracy and capsys.readouterr().err == ""  # cached: no training
    _folder(tmp_path / "shapes", 255)  # same name, other pixels: another judge
    load_judge(spec)
    assert capsys.readouterr().err.count("epoch 8/8") == 1

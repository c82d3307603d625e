"""Edit tests: one torch thread (the tiny U-Net is slower with two threads on a busy 2-core box)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def editor(tiny_run):
    from difflab.edit import Editor

    return Editor(tiny_run, steps=6, precision="fp32")  # the tests check identities at fp32 rounding


@pytest.fixture(scope="module")
def digits():
    from difflab.data import load_dataset

    data = load_dataset("mnist5k", split="test")
    return data.images[:3].float(), data.labels[:3]

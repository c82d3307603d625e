"""Tensors → pictures and files (`difflab.studio.pictures`) and the job helpers (`difflab.studio.jobs`)."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from difflab.errors import UserError
from difflab.studio import jobs, pictures


def test_grid_is_enlarged_pixel_for_pixel():
    images = torch.full((4, 1, 3, 3), -1.0)
    images[1] = 1.0  # (4, 1, 3, 3): one white image among black ones
    picture = pictures.grid_picture(images, scale=2)
    pad = 2  # report.images.grid's white border
    assert picture.shape == (2 * (2 * (3 + pad) + pad),) * 2  # a 2x2 grid, gray
    assert picture[2 * pad, 2 * pad] == 0 and picture[2 * pad, 2 * (2 * pad + 3)] == 255
    rgb = pictures.grid_picture(torch.zeros(2, 3, 3, 3), 2, scale=1)
    assert rgb.shape == (3 + 2 * 2, 2 * 3 + 3 * 2, 3)


def test_rows_picture_stacks_equal_rows():
    rows = [torch.full((3, 1, 4, 4), -1.0), torch.full((3, 1, 4, 4), 1.0)]
    picture = pictures.rows_picture(rows, scale=1)
    assert picture.shape == (2 * 4 + 3 * 2, 3 * 4 + 4 * 2)
    assert picture[2, 2] == 0 and picture[2 + 4 + 2, 2] == 255


def test_png_and_npz_files_round_trip(tmp_path):
    images = torch.linspace(-1, 1, 2 * 28 * 28).reshape(2, 1, 28, 28)
    png = pictures.write_png(pictures.grid_picture(images), tmp_path / "g.png")
    assert Image.open(png).size[0] > 28
    npz = pictures.write_npz(tmp_path / "s.npz", images, torch.tensor([3, 4]))
    with np.load(npz) as data:
        assert data["images"].shape == (2, 28, 28, 1) and data["images"].dtype == np.uint8
        assert data["labels"].tolist() == [3, 4]
    with np.load(pictures.write_npz(tmp_path / "u.npz", images, None, ["a one", "a two"])) as data:
        assert data["labels"].tolist() == [-1, -1] and data["prompts"].tolist() == ["a one", "a two"]


def test_stream_yields_each_step_then_the_result_and_reraises():
    def work(report):
        for i in range(3):
            report(i)
        return "end"

    assert list(jobs.stream(work)) == [("step", 0), ("step", 1), ("step", 2), ("done", "end")]

    def broken(report):
        report(1)
        raise UserError("bad value; fix: another")

    with pytest.raises(UserError, match="bad value"):
        list(jobs.stream(broken))


def test_job_lock_runs_one_job_and_names_the_running_one():
    lock = jobs.JobLock()
    started, release = threading.Event(), threading.Event()

    def hold():
        with lock.job("Generate"):
            started.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    worker.start()
    started.wait(5)
    assert lock.busy == "Generate"
    with pytest.raises(UserError, match="the model is busy with Generate"), lock.job("SDEdit", wait=False):
        pass
    release.set()
    worker.join(5)
    with lock.job("SDEdit", wait=False):
        assert lock.busy == "SDEdit"
    assert lock.busy is None

"""`difflab sample` streams: the image folder grows chunk by chunk, the grid is a bounded preview."""

import json

import numpy as np
from PIL import Image

from difflab.cli import main
from difflab.interop import imagefolder


def _rows(folder):
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def test_n_not_a_multiple_of_the_chunk_size_writes_exactly_n(tiny_run, tmp_path, capsys):
    out = tmp_path / "imgs"
    assert main(["sample", str(tiny_run.path), "--n", "23", "--chunk-size", "5", "--steps", "1", "--out-dir", str(out),
                 "--save-npz", str(tmp_path / "s.npz"), "--out", str(tmp_path / "g.png"), "--no-progress"]) == 0
    rows = _rows(out)
    assert [r["index"] for r in rows] == list(range(23))
    assert len(list(out.glob("*/*.png"))) == 23
    npz = np.load(tmp_path / "s.npz")
    assert npz["images"].shape == (23, 28, 28, 1) and npz["labels"].tolist() == [r["label"] for r in rows]
    assert np.array_equal(np.asarray(Image.open(out / rows[22]["file_name"])), npz["images"][22, ..., 0])
    assert "wrote 23 images to" in capsys.readouterr().out


def test_large_n_grid_shows_at_most_100(tiny_run, tmp_path, capsys):
    png = tmp_path / "g.png"
    assert main(["sample", str(tiny_run.path), "--n", "150", "--chunk-size", "40", "--steps", "1", "--out", str(png),
                 "--no-progress"]) == 0
    assert Image.open(png).size == (2 * (10 * 30 + 2), 2 * (10 * 30 + 2))  # 10 x 10 digits of 28 px, 2 px gaps, x2
    assert "grid of 100 of the 150 images (the first 10 of each class)" in capsys.readouterr().out


def test_interrupted_run_keeps_what_it_wrote(tiny_run, tmp_path, monkeypatch, capsys):
    write = imagefolder.ImageFolderWriter.write

    def interrupt_third_chunk(self, images, labels, texts=None):
        if self.written == 8:
            raise KeyboardInterrupt
        write(self, images, labels, texts)

    monkeypatch.setattr(imagefolder.ImageFolderWriter, "write", interrupt_third_chunk)
    out = tmp_path / "imgs"
    assert main(["sample", str(tiny_run.path), "--n", "20", "--chunk-size", "4", "--steps", "1", "--out-dir", str(out),
                 "--save-npz", str(tmp_path / "s.npz"), "--out", str(tmp_path / "g.png"), "--no-progress"]) == 130
    assert len(_rows(out)) == 8 and len(list(out.glob("*/*.png"))) == 8
    assert "holds 8 of 20 images" in capsys.readouterr().err
    assert len(np.load(tmp_path / "s.npz")["images"]) == 8  # the .npz holds the same images as the folder


def test_out_dir_alone_writes_no_grid_in_the_current_folder(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(tiny_run.path), "--n", "12", "--steps", "1", "--out-dir", "gen", "--no-progress"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen"]  # no samples.png nobody asked for
    assert len(list((tmp_path / "gen").glob("*/*.png"))) == 12 and "grid" not in capsys.readouterr().out
    assert main(["sample", str(tiny_run.path), "--n", "4", "--steps", "1", "--no-progress"]) == 0
    assert (tmp_path / "samples.png").is_file()  # with nowhere else to go, the grid is the default output

"""`difflab evaluate --images FILE.npz` refuses every malformed archive in one line that names the file, the
problem and the fix (no numpy or zipfile traceback), and reads a well-formed one."""

import numpy as np
import pytest

from difflab.errors import UserError
from difflab.evaluation.inputs import load_images

CLASSES = tuple(str(i) for i in range(10))
GOOD = (np.random.RandomState(0).rand(40, 28, 28, 1) * 255).astype("uint8")
LABELS = np.arange(40) % 10


def savez(**arrays):
    return lambda path: np.savez(path, **arrays)


CASES = {
    "truncated": (lambda p: p.write_bytes(_bytes(savez(images=GOOD, labels=LABELS))[:300]), "not a readable .npz"),
    "text file": (lambda p: p.write_text("hello"), "not a readable .npz"),
    "a bare .npy": (lambda p: p.write_bytes(_npy(GOOD)), "a single .npy array"),
    "object arrays": (savez(images=np.array([None] * 40, dtype=object)), "not a readable .npz .*Object arrays"),
    "no images key": (savez(x=GOOD), "no 'images' array .found x."),
    "float images": (savez(images=GOOD.astype("float32")), "images must be uint8"),
    "zero images": (savez(images=GOOD[:0], labels=LABELS[:0]), "holds 0 images"),
    "channels first": (savez(images=GOOD.transpose(0, 3, 1, 2), labels=LABELS), "look channels-first"),
    "float labels": (savez(images=GOOD, labels=LABELS + 0.5), "labels must be integer class ids .*float64"),
    "2-d labels": (savez(images=GOOD, labels=LABELS.reshape(40, 1)), r"labels must be integer class ids .*\(40, 1\)"),
    "labels out of range": (savez(images=GOOD, labels=LABELS + 5), r"got 40 in 5\.\.14"),
    "too few labels": (savez(images=GOOD, labels=LABELS[:30]), r"labels must be 40 class ids .*got 30"),
}


def _bytes(write):
    import io

    buffer = io.BytesIO()
    write(buffer)
    return buffer.getvalue()


def _npy(array):
    return _bytes(lambda buffer: np.save(buffer, array))


@pytest.mark.parametrize("case", CASES)
def test_a_malformed_npz_is_one_line(tmp_path, case):
    write, says = CASES[case]
    path = tmp_path / "x.npz"
    write(path)
    with pytest.raises(UserError, match=says) as caught:
        load_images(path, CLASSES)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_well_formed_npz_reads_with_and_without_labels(tmp_path):
    np.savez(tmp_path / "a.npz", images=GOOD, labels=LABELS)
    images, labels = load_images(tmp_path / "a.npz", CLASSES)
    assert images.shape == (40, 1, 28, 28) and labels.tolist() == LABELS.tolist()
    assert float(images.min()) >= -1 and float(images.max()) <= 1
    np.savez(tmp_path / "u.npz", images=GOOD, labels=np.full(40, -1))
    assert load_images(tmp_path / "u.npz", CLASSES)[1] is None  # -1: unconditional

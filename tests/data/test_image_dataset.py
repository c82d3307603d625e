"""`ImageDataset` is public (`difflab.ImageDataset`): what it holds is checked where it is made, so NaN pixels,
raw uint8 pixels, pixels outside [-1, 1] or float labels cannot reach training or a judge."""

import pytest
import torch

from difflab import ImageDataset, UserError

LABELS = torch.tensor([0, 1])


@pytest.mark.parametrize("images, labels, says", [
    (torch.tensor(float("nan")).expand(2, 1, 4, 4).clone(), LABELS, r"finite values in \[-1, 1\], found nan"),
    (torch.zeros(2, 1, 4, 4).index_fill_(0, torch.tensor([1]), float("inf")), LABELS, "found 0..inf"),
    (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), LABELS, "must be floats .* torch.uint8; .*from_uint8"),
    (torch.full((2, 1, 4, 4), 255.0), LABELS, r"found 255\.\.255; fix: scale pixels"),
    (torch.zeros(2, 1, 4, 4), LABELS.float(), "labels must be integer class ids"),
    (torch.zeros(2, 1, 4, 4), torch.tensor([0, 2]), r"labels must lie in \[0, 1\]"),
])
def test_bad_contents_are_one_line(images, labels, says):
    with pytest.raises(UserError, match=says) as caught:
        ImageDataset(images, labels, ("a", "b"), "mine")
    assert "\n" not in str(caught.value) and str(caught.value).startswith("mine: ")


def test_good_contents_and_an_empty_dataset_are_accepted():
    data = ImageDataset(torch.rand(2, 1, 4, 4) * 2 - 1, LABELS, ("a", "b"), "mine")
    assert len(data.subset(torch.tensor([1]))) == 1
    assert len(ImageDataset(torch.zeros(0, 1, 4, 4), torch.zeros(0, dtype=torch.long), ("a",), "none")) == 0

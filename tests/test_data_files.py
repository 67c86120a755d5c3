"""``--data FILE``: ``.npy`` and ``.pt`` files read batch by batch as a Dataset, labels carried, values as before."""

import numpy as np
import pytest
import torch

from uae_plugin.cli.loading import load_data, load_dataset
from uae_plugin.generation.sources import Rows


def test_an_npy_file_is_read_row_by_row_with_the_values_a_whole_read_gives(digits, tmp_path):
    raw = (digits[:10].numpy() * 255).round().astype(np.uint8)
    np.save(tmp_path / "d.npy", raw)
    data = load_dataset(str(tmp_path / "d.npy"))
    assert len(data) == 10 and torch.equal(data[3], torch.from_numpy(raw[3]).float() / 255)
    assert torch.equal(Rows(data).read(range(2, 7))[0], torch.from_numpy(raw[2:7]).float() / 255)
    assert torch.equal(load_data(str(tmp_path / "d.npy")), torch.from_numpy(raw).float() / 255)


def test_a_pt_dict_with_labels_gives_x_label_items_and_limit_keeps_the_first_rows(mnist, tmp_path):
    torch.save({"x": mnist["x_test"][:8], "y": mnist["y_test"][:8]}, tmp_path / "d.pt")
    data = load_dataset(str(tmp_path / "d.pt"), limit=5)
    x, label = data[4]
    assert len(data) == 5 and torch.equal(x, mnist["x_test"][4]) and label == int(mnist["y_test"][4])


def test_float_values_outside_the_unit_box_are_refused_when_their_rows_are_read(digits, tmp_path):
    bad = digits[:6].clone()
    bad[4] *= 3
    torch.save(bad, tmp_path / "d.pt")
    data = load_dataset(str(tmp_path / "d.pt"))
    assert torch.equal(data[0], digits[0])
    with pytest.raises(ValueError, match=r"d\.pt \(rows 4-5\) has values outside \[0, 1\]"):
        Rows(data).read(range(4, 6))

"""``--data DIR``: image folders read lazily, in torchvision ImageFolder's order, with stated mode rules.

Real digits written as PNG files; the command line runs in-process (``uae_plugin.cli.main``) on a few images.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from uae_plugin import UAEDataset
from uae_plugin.cli import main
from uae_plugin.cli.images import ImageFolderRows


def _png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def _u8(digit):
    return (digit[0] * 255).round().to(torch.uint8).numpy()


@pytest.fixture
def classes(digits, tmp_path):
    """Two class folders, one with a nested folder, names in mixed order; returns the folder."""
    root = tmp_path / "digits"
    names = ["b/02.png", "b/10.png", "a/z.png", "a/sub/c.png", "a/B.png", "b/01.PNG"]
    for i, name in enumerate(names):
        _png(root / name, _u8(digits[i]))
    return root


def test_order_and_labels_are_torchvision_image_folders_and_pixels_are_exact(classes, digits):
    from torchvision.datasets import ImageFolder

    ours = ImageFolderRows(classes)
    theirs = ImageFolder(str(classes))
    assert [str(p) for p in ours.files] == [path for path, _ in theirs.samples]
    assert ours.labels == [label for _, label in theirs.samples] and ours.classes == theirs.classes
    x, label = ours[0]
    assert ours.files[0] == classes / "a" / "B.png" and label == 0  # written from digits[4]
    assert torch.equal(x, torch.from_numpy(_u8(digits[4])).float()[None] / 255)


def test_a_folder_without_subfolders_gives_bare_images_sorted_by_name(digits, tmp_path):
    for name in ("b.png", "a.png", "c.jpg"):
        _png(tmp_path / name, _u8(digits[0]))
    rows = ImageFolderRows(tmp_path)
    assert [p.name for p in rows.files] == ["a.png", "b.png", "c.jpg"] and rows.labels is None
    assert torch.is_tensor(rows[0])


def test_images_beside_class_subfolders_are_an_error_naming_them(classes, digits):
    _png(classes / "loose.png", _u8(digits[0]))
    with pytest.raises(ValueError, match=r"holds images \(loose\.png\) beside class subfolders \(a, b\)"):
        ImageFolderRows(classes)


def test_mode_rules_grey_palette_rgba_and_16_bit(digits, tmp_path):
    grey = _u8(digits[0])
    colour = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    cases = {
        "grey": (_png(tmp_path / "grey.png", grey), 1),
        "grey palette": (tmp_path / "gp.png", 1),
        "colour palette": (tmp_path / "cp.png", 3),
        "rgba": (tmp_path / "rgba.png", 3),
        "16-bit": (tmp_path / "g16.png", 1),
    }
    Image.fromarray(grey).convert("P").save(tmp_path / "gp.png")
    Image.fromarray(colour).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(tmp_path / "cp.png")
    Image.fromarray(np.dstack([colour, np.full_like(grey, 7)])).save(tmp_path / "rgba.png")
    wide = grey.astype(np.uint16) * 257 + 3
    Image.fromarray(wide).save(tmp_path / "g16.png")
    for name, (path, channels) in cases.items():
        sub = tmp_path / "one" / name
        sub.mkdir(parents=True)
        (sub / path.name).write_bytes(path.read_bytes())
        x = ImageFolderRows(sub)[0]
        assert x.shape[0] == channels, name
        assert 0 <= float(x.min()) and float(x.max()) <= 1, name
    assert torch.equal(ImageFolderRows(tmp_path / "one" / "16-bit")[0][0], torch.from_numpy(wide).float() / 65535)
    palette_rgb = np.array(Image.open(tmp_path / "cp.png").convert("RGB"))
    got = ImageFolderRows(tmp_path / "one" / "colour palette")[0]
    assert torch.equal(got, torch.from_numpy(palette_rgb).permute(2, 0, 1).float() / 255)
    rgba = ImageFolderRows(tmp_path / "one" / "rgba")[0]
    assert torch.equal(rgba, torch.from_numpy(colour).permute(2, 0, 1).float() / 255), "alpha dropped, not blended"


def test_one_and_three_channel_files_are_an_error_naming_files_unless_channels_is_given(digits, tmp_path):
    grey = _u8(digits[0])
    _png(tmp_path / "a.png", grey)
    _png(tmp_path / "b.png", np.stack([grey] * 3, axis=-1))
    with pytest.raises(ValueError, match=r"differ in channels \(1 channel\(s\): a\.png; 3 channel\(s\): b\.png\)"):
        ImageFolderRows(tmp_path)
    assert [tuple(x.shape) for x in ImageFolderRows(tmp_path, channels=3)] == [(3, 28, 28)] * 2
    as_grey = ImageFolderRows(tmp_path, channels=1)
    assert torch.equal(as_grey[1], as_grey[0]), "R = G = B: the luma is the grey value itself"


def test_mixed_sizes_are_an_error_naming_the_first_files_of_each_size_unless_resized(digits, tmp_path):
    grey = _u8(digits[0])
    for i in range(5):
        _png(tmp_path / f"s{i}.png", grey)
    _png(tmp_path / "t.png", grey[:20, :24])
    message = r"differ in size \(H x W: 20x24: t\.png; 28x28: s0\.png, s1\.png, s2\.png, \.\.\. \(5\)\)"
    with pytest.raises(ValueError, match=message):
        ImageFolderRows(tmp_path)
    resized = ImageFolderRows(tmp_path, image_size=(16, 16))
    small = torch.from_numpy(grey[:20, :24]).float()[None, None] / 255
    expected = F.interpolate(small, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)[0]
    assert torch.equal(resized[5], expected.clamp(0, 1))
    assert resized[0].shape == (1, 16, 16)


@pytest.fixture
def model_file(conv_ae, tmp_path):
    torch.save(conv_ae.state_dict(), tmp_path / "ae.pt")
    return tmp_path / "ae.pt"


def _generate(model_file, data, out, *extra):
    argv = ["generate", "--model", str(model_file), "--model-class", "conv", "--data", str(data), "--out", str(out)]
    return main([*argv, "--steps", "1", "--mine-steps", "1", "--chunk-size", "3", "--no-progress", *extra])


def test_uae_generate_carries_class_labels_and_records_the_file_list(model_file, classes, tmp_path, capsys):
    assert _generate(model_file, classes, tmp_path / "u") == 0
    uaes = UAEDataset(tmp_path / "u")
    rows = ImageFolderRows(classes)
    assert [uaes[i][1] for i in range(len(uaes))] == rows.labels
    listed = (tmp_path / "u" / "files.txt").read_text().splitlines()
    assert listed == [
        f"{i}\t{label}\t{path}" for i, (label, path) in enumerate(zip(rows.labels, rows.files, strict=True))
    ]


def test_an_unreadable_image_is_one_line_naming_it_exit_2_and_nothing_written_for_it(
    model_file, classes, tmp_path, capsys
):
    last = ImageFolderRows(classes).files[4]  # in the second chunk of 3, not the first or last row (read first)
    last.write_bytes(last.read_bytes()[:60])  # a truncated PNG: the header reads, the pixels do not
    assert _generate(model_file, classes, tmp_path / "u") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"image {last} cannot be read" in err[0] and "--skip-bad" in err[0], err
    assert (tmp_path / "u" / "chunk-00000.pt").exists() and not (tmp_path / "u" / "chunk-00001.pt").exists()
    (classes / "a" / "junk.png").write_bytes(b"not an image at all")
    assert _generate(model_file, classes, tmp_path / "v") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "junk.png cannot be read (UnidentifiedImageError" in err[0], err
    assert not (tmp_path / "v").exists()


def test_skip_bad_leaves_unreadable_images_out_and_lists_them(model_file, classes, tmp_path, capsys):
    (classes / "a" / "junk.png").write_bytes(b"not an image at all")
    assert _generate(model_file, classes, tmp_path / "u", "--skip-bad") == 0
    assert "skipped 1 unreadable images" in capsys.readouterr().err
    assert "junk.png" in (tmp_path / "u" / "skipped.txt").read_text()
    assert len(UAEDataset(tmp_path / "u")) == 6
    assert "junk.png" not in (tmp_path / "u" / "files.txt").read_text()

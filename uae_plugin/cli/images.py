"""A folder of images as a map-style Dataset: listed in torchvision ``ImageFolder``'s order, decoded lazily.

Order and labels: with class subfolders, ``classes = sorted(subfolder names)`` and the files of class ``c``
are those ``sorted(os.walk(folder / c))`` finds, each folder's files sorted by name, exactly as
``ImageFolder`` lists them; item ``i`` is ``(x, label)``. A folder without subfolders gives ``x`` items, its
files sorted by name. Images beside class subfolders, or a class subfolder with none, are an error.
Extensions: torchvision's (``IMG_EXTENSIONS``, any case).

Modes (``x: [C, H, W]`` float32 in [0, 1]): grey (``1``, ``L``, ``LA``) stays 1 channel, 8-bit values
/ 255; 16-bit grey (``I;16*``, ``I``) / 65535, the range of 16 bits (values outside it are an error);
float (``F``) must lie in [0, 1]; a palette image (``P``, ``PA``) is grey (1 channel) when every palette
entry has R = G = B, else RGB; RGB, RGBA, CMYK, YCbCr, ... become RGB (3 channels). Alpha is dropped, never
composited. Files with 1 and with 3 channels are an error naming some of each, unless ``channels`` says
what to convert to: 3 -> 1 by ITU-R 601-2 luma (PIL's ``convert("L")``), 1 -> 3 by repeating the channel.

Sizes: ``image_size=(H, W)`` resizes every image whose size differs (bilinear with antialiasing,
``torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)``, on values in
[0, 1]); without it, files of different sizes are an error naming the first files of each size.

Before any image is decoded, the headers of every file are read to find its channels and size (unless both
``channels`` and ``image_size`` are given: then nothing is read until an item is asked for). A file that
cannot be decoded raises one ``ValueError`` naming it when its item is read; with ``skip_bad=True`` every
file is decoded once here and the unreadable ones are left out (listed in ``skipped``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's
GREY = {"1", "L", "LA", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
SHOWN = 3  # files named per group in an error


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS)


def list_images(folder: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """The image files of ``folder`` in ``ImageFolder``'s order, their labels (None without class folders),
    and the class names."""
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    classes = [e.name for e in entries if e.is_dir()]
    loose = [Path(e.path) for e in entries if e.is_file() and _is_image(e.name)]
    if not classes:
        if not loose:
            raise ValueError(f"folder {folder} has no images ({', '.join(IMG_EXTENSIONS)})")
        return loose, None, []
    if loose:
        raise ValueError(
            f"folder {folder} holds images ({_names(loose, folder)}) beside class subfolders ({_first(classes)}); "
            "move them into a class subfolder, or point --data at a folder holding only one or the other"
        )
    files, labels = [], []
    for label, name in enumerate(classes):
        found = [
            Path(root) / fname
            for root, _, fnames in sorted(os.walk(folder / name, followlinks=True))
            for fname in sorted(fnames)
            if _is_image(fname)
        ]
        if not found:
            raise ValueError(f"class folder {folder / name} has no images ({', '.join(IMG_EXTENSIONS)})")
        files += found
        labels += [label] * len(found)
    return files, labels, classes


def _first(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f", ... ({len(names)})" if len(names) > SHOWN else "")


def _names(paths: list[Path], folder: Path) -> str:
    return _first([str(p.relative_to(folder)) for p in paths])


def channels_of(img: Any) -> int:
    """1 or 3, by the rules above, from the header (and the palette) of an opened PIL image."""
    if img.mode in GREY:
        return 1
    if img.mode in ("P", "PA"):
        palette = img.getpalette() or []
        return 1 if all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette), 3)) else 3
    return 3


def _unreadable(path: Path, err: BaseException) -> ValueError:
    reason = str(err).splitlines()[0] if str(err) else ""
    return ValueError(
        f"image {path} cannot be read ({type(err).__name__}: {reason}); fix or remove it, or pass --skip-bad"
    )


def decode(path: Path, channels: int) -> torch.Tensor:
    """``x: [channels, H, W]`` float32 in [0, 1] from one image file, by the mode rules above."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            own = channels_of(img)
            if img.mode.startswith("I") or img.mode == "F":
                array, scale = np.asarray(img), (1.0 if img.mode == "F" else 65535.0)
            else:
                target = "L" if own == 1 or channels == 1 else "RGB"
                array, scale = np.asarray(img.convert(target)), 255.0
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise _unreadable(path, err) from None
    x = torch.from_numpy(array.astype(np.float32) if array.dtype == np.uint16 else np.array(array))
    if not 0 <= float(x.min()) <= float(x.max()) <= scale:
        raise ValueError(
            f"image {path} has values outside [0, {scale:g}]; store 8- or 16-bit images or floats in [0, 1]"
        )
    x = x.float() / scale  # as torch divides 8-bit data everywhere else: bit for bit the same values
    x = x[None] if x.dim() == 2 else x.permute(2, 0, 1)
    if x.shape[0] != channels:  # 16-bit or float grey to RGB (8-bit was converted by PIL above)
        x = x.expand(channels, -1, -1).clone()
    return x


class ImageFolderRows(Dataset):
    """The images of ``folder``: item ``i`` is ``x: [C, H, W]`` in [0, 1], or ``(x, label)`` with class folders.

    ``files`` (the paths, in order), ``labels``, ``classes`` and ``skipped`` (``[(path, reason)]``) are kept.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        image_size: tuple[int, int] | None = None,
        channels: int | None = None,
        skip_bad: bool = False,
        limit: int | None = None,
    ) -> None:
        self.folder = Path(folder)
        if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
            raise ValueError(f"--image-size must be two ints H W >= 1, got {image_size}")
        if channels not in (None, 1, 3):
            raise ValueError(f"--channels must be 1 or 3, got {channels}")
        files, labels, self.classes = list_images(self.folder)
        self.files, self.labels = files[:limit], None if labels is None else labels[:limit]
        self.skipped: list[tuple[Path, str]] = []
        if skip_bad:
            self._leave_out_unreadable()
        self.size = None if image_size is None else tuple(image_size)
        self.resize, self.channels = image_size is not None, channels
        if channels is None or image_size is None:
            self._read_headers()

    def _leave_out_unreadable(self) -> None:
        keep = []
        for i, path in enumerate(self.files):
            try:
                decode(path, 3)
                keep.append(i)
            except ValueError as err:
                self.skipped.append((path, str(err)))
        if not keep:
            raise ValueError(f"no image in {self.folder} can be read (all {len(self.files)} skipped)")
        self.files = [self.files[i] for i in keep]
        self.labels = None if self.labels is None else [self.labels[i] for i in keep]

    def _read_headers(self) -> None:
        """Every file's channels and size from its header; mixed ones are an error naming files of each."""
        from PIL import Image

        by_channels, by_size = defaultdict(list), defaultdict(list)
        for path in self.files:
            try:
                with Image.open(path) as img:
                    by_channels[channels_of(img)].append(path)
                    by_size[(img.height, img.width)].append(path)
            except (OSError, ValueError, SyntaxError) as err:
                raise _unreadable(path, err) from None
        if self.channels is None:
            if len(by_channels) > 1:
                groups = "; ".join(f"{c} channel(s): {_names(p, self.folder)}" for c, p in sorted(by_channels.items()))
                raise ValueError(
                    f"images in {self.folder} differ in channels ({groups}); pass --channels 1 or --channels 3"
                )
            self.channels = next(iter(by_channels))
        if self.size is None:
            if len(by_size) > 1:
                groups = "; ".join(f"{h}x{w}: {_names(p, self.folder)}" for (h, w), p in sorted(by_size.items()))
                raise ValueError(
                    f"images in {self.folder} differ in size (H x W: {groups}); pass --image-size H W to resize"
                )
            self.size = next(iter(by_size))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, int]:
        path = self.files[i]
        x = decode(path, self.channels)  # type: ignore[arg-type]
        if tuple(x.shape[1:]) != self.size:
            if not self.resize:  # the file changed since its header was read
                raise ValueError(f"image {path} has size {tuple(x.shape[1:])}, not {self.size}; pass --image-size")
            x = F.interpolate(x[None], size=self.size, mode="bilinear", antialias=True, align_corners=False)
            x = x[0].clamp(0, 1)
        return x if self.labels is None else (x, self.labels[i])

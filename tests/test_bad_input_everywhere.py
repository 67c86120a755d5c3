"""Bad input at every surface a user can reach, as one table: (surface, case) -> error type and message.

Surfaces: the core ``MinMaxAttack(Reconstruction(model))``, the torchattacks adapters ``UAE`` and ``MINEAttack``,
kornia's ``RandomUAE``, lightly's ``UAETransform``, ``generate_dataset`` and ``uae generate`` (in-process through
``uae_plugin.cli.main``). Guaranteed for every row: the error type (exit status 2, one stderr line and no traceback
for the command line), a message naming the problem and the fix, and, where the error is about the input, a model
that was never called; errors that only the model can reveal (channels, output type) stop at its first call.

Pairs tested elsewhere are not repeated: tests/test_bad_input.py (core: rank 1, NaN/Inf, range, int64, empty batch,
eps/steps, labels, index), tests/test_cli.py (eps/steps/chunk-size, missing files, pickled code in a state dict or
.pt, unwritable or below-a-file --out) and the integration tests (kornia NaN and options; torchattacks eps/steps;
lightly rank and NaN views). Accepted by design, so not rows: kornia clamps values within 1
of [0, 1] (its convention for intensity ops; further out it refuses, tests/test_integration_kornia.py) and
passes an empty batch through (see the last test); the command line scales integer data by 1/255; the
torchattacks and kornia adapters move images to the model's device.
"""

import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from support import CountedCalls
from torch import nn

from uae_plugin import MinMaxAttack, Reconstruction, generate_dataset
from uae_plugin.cli import main
from uae_plugin.experiments.models import ConvAutoencoder, SmallClassifier
from uae_plugin.integrations.kornia import RandomUAE
from uae_plugin.integrations.lightly import UAETransform
from uae_plugin.integrations.torchattacks import UAE, MINEAttack

TINY = dict(steps=1, mine_steps=1, seed=0)
EXIT_2 = 2  # the expected "error type" of a command-line row


# --- models ------------------------------------------------------------------------------------------------------


class TupleOutput(nn.Module):
    """A model returning ``(y, y)``, as detection or multi-head models do."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.inner(x)
        return y, y


class DictOutput(nn.Module):
    """A model returning ``{"out": y}``, as torchvision segmentation and HF models do."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.inner(x)}


def _autoencoder() -> nn.Module:
    torch.manual_seed(0)
    return ConvAutoencoder().eval()


def _classifier() -> nn.Module:
    torch.manual_seed(0)
    return SmallClassifier().eval()


def _encoder() -> nn.Module:
    """A grey-image encoder ``[B, 1, 28, 28] -> [B, 16]``."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 13 * 13, 16)).eval()


# --- surfaces: run(model, x, options, tmp_path) ---------------------------------------------------------------


def _core(model, x, options, tmp_path):
    MinMaxAttack(Reconstruction(model), **{**TINY, **options})(x)


def _torchattacks(model, x, options, tmp_path):
    UAE(model, **{**TINY, **options})(x)


def _mine(model, x, options, tmp_path):
    MINEAttack(model, **{**TINY, **options})(x, torch.zeros(len(x), dtype=torch.long))


def _kornia(model, x, options, tmp_path):
    RandomUAE(model, p=1.0, **{**TINY, **options})(x)


def _lightly(model, x, options, tmp_path):
    UAETransform(model, n_views=2, **{**TINY, **options})(x)


def _generation(model, x, options, tmp_path):
    attack = MinMaxAttack(Reconstruction(model), **TINY)
    generate_dataset(attack, x, options.get("out_dir", tmp_path / "out"), chunk_size=2, progress=False)


def _cli(model, x, options, tmp_path):
    """``uae generate`` of a TorchScript model and a .pt file (unless a case names other files): the exit status."""
    model_file, data_file = options.get("model_file"), options.get("data_file")
    if model_file is None:
        model_file = tmp_path / "model.ts"
        torch.jit.script(model).save(str(model_file))
    if data_file is None:
        data_file = tmp_path / "data.pt"
        torch.save(x, data_file)
    argv = ["generate", "--model", str(model_file), "--data", str(data_file), "--out", str(tmp_path / "out")]
    argv += ["--model-class", options["model_class"]] if "model_class" in options else []
    return main([*argv, "--steps", "1", "--mine-steps", "1", "--no-progress"])


SURFACES = {  # name: (run, model factory, whether the model's calls can be counted)
    "core": (_core, _autoencoder, True),
    "torchattacks.UAE": (_torchattacks, _autoencoder, True),
    "torchattacks.MINEAttack": (_mine, _classifier, True),
    "kornia.RandomUAE": (_kornia, _autoencoder, True),
    "lightly.UAETransform": (_lightly, _encoder, True),
    "generate_dataset": (_generation, _autoencoder, True),
    "uae generate": (_cli, _autoencoder, False),  # the model runs from a TorchScript copy
}


# --- cases: case(model, x, tmp_path) -> (model, x, options) -------------------------------------------------------


class _RunsCode:
    """Unpickling this creates the folder ``marker``: proof that a loader executed pickled code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _marker(tmp_path: Path) -> Path:
    return tmp_path / "PAYLOAD_RAN"


def _empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _random_bytes(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return path


def _code_pickle_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.ts"
    path.write_bytes(pickle.dumps({"weight": _RunsCode(_marker(tmp_path))}))
    return path


def _code_npz_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.npz"
    np.savez(path, x=np.array([_RunsCode(_marker(tmp_path))], dtype=object))
    return path


def _with_nan(x):
    x = x.clone()
    x[1, 0, 3, 3] = float("nan")
    return x


def _with_inf(x):
    x = x.clone()
    x[0, 0, 5, 5] = float("inf")
    return x


def _below_a_file(tmp_path):
    (tmp_path / "a_file").write_text("user data")
    return tmp_path / "a_file" / "out"


def _unwritable(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        pytest.skip("running as a user who can write anywhere (root)")
    return locked / "out"


CASES = {
    "rank 1": lambda m, x, t: (m, x.flatten(), {}),
    "rank 5": lambda m, x, t: (m, x[None], {}),
    "no channel axis": lambda m, x, t: (m, x[:, 0], {}),
    "3 channels for a 1-channel model": lambda m, x, t: (m, x.expand(-1, 3, -1, -1).contiguous(), {}),
    "NaN": lambda m, x, t: (m, _with_nan(x), {}),
    "Inf": lambda m, x, t: (m, _with_inf(x), {}),
    "values outside [0, 1]": lambda m, x, t: (m, x * 3 - 1, {}),
    "uint8 images": lambda m, x, t: (m, (x * 255).to(torch.uint8), {}),
    "empty batch": lambda m, x, t: (m, x[:0], {}),
    "eps 0": lambda m, x, t: (m, x, {"eps": 0.0}),
    "steps 0": lambda m, x, t: (m, x, {"steps": 0}),
    "model returns a tuple": lambda m, x, t: (TupleOutput(m), x, {}),
    "model returns a dict": lambda m, x, t: (DictOutput(m), x, {}),
    "model on another device": lambda m, x, t: (m.to("meta"), x, {}),
    "out_dir below a file": lambda m, x, t: (m, x, {"out_dir": _below_a_file(t)}),
    "out_dir not writable": lambda m, x, t: (m, x, {"out_dir": _unwritable(t)}),
    "empty (0-byte) data file": lambda m, x, t: (m, x, {"data_file": _empty_file(t / "empty.pt")}),
    "empty (0-byte) .npz data file": lambda m, x, t: (m, x, {"data_file": _empty_file(t / "empty.npz")}),
    "empty (0-byte) model file": lambda m, x, t: (m, x, {"model_file": _empty_file(t / "empty.ts")}),
    "random bytes as TorchScript model": lambda m, x, t: (m, x, {"model_file": _random_bytes(t / "m.ts")}),
    "random bytes as state dict": lambda m, x, t: (
        m,
        x,
        {"model_file": _random_bytes(t / "m.pt"), "model_class": "conv"},
    ),
    "random bytes as .pt data": lambda m, x, t: (m, x, {"data_file": _random_bytes(t / "d.pt")}),
    "random bytes as .npz data": lambda m, x, t: (m, x, {"data_file": _random_bytes(t / "d.npz")}),
    "pickled code as TorchScript model": lambda m, x, t: (m, x, {"model_file": _code_pickle_file(t)}),
    "pickled code in .npz data": lambda m, x, t: (m, x, {"data_file": _code_npz_file(t)}),
}


# --- the table -----------------------------------------------------------------------------------------------------

NO_CALL, FIRST_CALL, ANY = 0, 1, None  # model calls expected: none, only the failing first one, not counted

CORE, UAE_, MINE, KORNIA, LIGHTLY, GEN, CLI = list(SURFACES)  # the surfaces' names, in the table's order
NAMED = r"the model \(CountedCalls\) "  # adapters name the user's model (here the counter), not their wrappers


def _shape(shape: str, named: str = "") -> str:
    return named + rf"cannot run on input of shape \({shape}\): .*; pass data in the shape the model expects"


TUPLE = r"must return a single tensor, got a tuple of 2; wrap it in an nn\.Module .*model\(x\)\[0\]"
DICT = r"must return a single tensor, got a dict with keys \['out'\]; wrap it .*model\(x\)\['out'\]"
UINT8 = r"float.*got dtype torch\.uint8.*x\.float\(\) / 255"
DEVICE = r"the model is on meta but x is on cpu; put both on one device .*model\.to\('cpu'\) or x\.to\('meta'\)"
META = r"'meta' device and hold no values; load real weights first"
NAN = r"NaN or Inf; clean the data"
RANGE = r"values in \[0, 1\], got range \[-1, 2\]; undo the normalisation"
NO_AXIS = r"images \[B, C, H, W\] for CountedCalls, which has convolutions; got shape \(2, 28, 28\): add the channel"
EMPTY = r"empty batch \(shape \(0, 1, 28, 28\)\); pass at least one sample"
CHANNELS = "3 channels for a 1-channel model"

ROWS = [
    # core: the other cases live in tests/test_bad_input.py
    (CORE, "no channel axis", ValueError, NO_AXIS, NO_CALL),
    (CORE, CHANNELS, ValueError, _shape("2, 3, 28, 28", NAMED), FIRST_CALL),
    (CORE, "uint8 images", TypeError, UINT8, NO_CALL),
    (CORE, "model returns a tuple", TypeError, TUPLE, FIRST_CALL),
    (CORE, "model returns a dict", TypeError, DICT, FIRST_CALL),
    (CORE, "model on another device", ValueError, DEVICE, NO_CALL),
    # torchattacks UAE: images go to the model's device (torchattacks' rule)
    (UAE_, "no channel axis", ValueError, NO_AXIS, NO_CALL),
    (UAE_, CHANNELS, ValueError, _shape("2, 3, 28, 28", NAMED), FIRST_CALL),
    (UAE_, "NaN", ValueError, NAN, NO_CALL),
    (UAE_, "values outside [0, 1]", ValueError, RANGE, NO_CALL),
    (UAE_, "uint8 images", TypeError, UINT8, NO_CALL),
    (UAE_, "empty batch", ValueError, EMPTY, NO_CALL),
    (UAE_, "model returns a tuple", TypeError, TUPLE, FIRST_CALL),
    (UAE_, "model returns a dict", TypeError, DICT, FIRST_CALL),
    (UAE_, "model on another device", ValueError, META, NO_CALL),
    # torchattacks MINEAttack: labels [B] given with every batch
    (MINE, CHANNELS, ValueError, _shape("2, 3, 28, 28", NAMED), FIRST_CALL),
    (MINE, "uint8 images", TypeError, UINT8, NO_CALL),
    (MINE, "steps 0", ValueError, r"steps must be an int >= 1, got 0", NO_CALL),
    (MINE, "model returns a tuple", TypeError, TUPLE, FIRST_CALL),
    (MINE, "model returns a dict", TypeError, DICT, FIRST_CALL),
    (MINE, "model on another device", ValueError, META, NO_CALL),
    # kornia RandomUAE: kornia reads (H, W), (C, H, W) or (B, C, H, W); rows go to the model's device
    (KORNIA, "rank 5", ValueError, r"Input size must have a shape of either \(H, W\), \(C, H, W\)", NO_CALL),
    (KORNIA, "no channel axis", ValueError, _shape("1, 2, 28, 28", NAMED), FIRST_CALL),
    (KORNIA, CHANNELS, ValueError, _shape("2, 3, 28, 28", NAMED), FIRST_CALL),
    (KORNIA, "Inf", ValueError, r"NaN or Inf; clean the data first", NO_CALL),
    (KORNIA, "uint8 images", TypeError, UINT8, NO_CALL),
    (KORNIA, "model returns a tuple", TypeError, TUPLE, FIRST_CALL),
    (KORNIA, "model returns a dict", TypeError, DICT, FIRST_CALL),
    (KORNIA, "model on another device", ValueError, META, NO_CALL),
    # lightly UAETransform (mean/std None: the views are pixels); the model sees n_views views per sample, the
    # message names the batch the user passed
    (LIGHTLY, CHANNELS, ValueError, _shape("2, 3, 28, 28", NAMED), FIRST_CALL),
    (LIGHTLY, "Inf", ValueError, r"views contain NaN or Inf .*clean the data", NO_CALL),
    (
        LIGHTLY,
        "values outside [0, 1]",
        ValueError,
        r"views un-normalised span \[-1, 2\]: pass the mean= and std= the views",
        NO_CALL,
    ),
    (LIGHTLY, "uint8 images", TypeError, r"views must be a float tensor.*x\.float\(\) / 255", NO_CALL),
    (LIGHTLY, "empty batch", ValueError, "views is an " + EMPTY, NO_CALL),
    (LIGHTLY, "eps 0", ValueError, r"eps must be a finite number > 0, got 0\.0", NO_CALL),
    (LIGHTLY, "steps 0", ValueError, r"steps must be an int >= 1, got 0", NO_CALL),
    (LIGHTLY, "model returns a tuple", TypeError, TUPLE, FIRST_CALL),
    (LIGHTLY, "model returns a dict", TypeError, DICT, FIRST_CALL),
    (LIGHTLY, "model on another device", ValueError, DEVICE, NO_CALL),
    # generate_dataset: its attack's settings are the core's
    (GEN, "rank 1", ValueError, r"data must be a non-empty tensor \[N, \.\.\.\]", NO_CALL),
    (GEN, CHANNELS, ValueError, _shape("2, 3, 28, 28", NAMED), FIRST_CALL),
    (GEN, "NaN", ValueError, NAN, NO_CALL),
    (GEN, "values outside [0, 1]", ValueError, RANGE, NO_CALL),
    (GEN, "uint8 images", TypeError, UINT8.replace("x", "data"), NO_CALL),
    (GEN, "empty batch", ValueError, r"data must be a non-empty tensor", NO_CALL),
    (GEN, "model returns a tuple", TypeError, TUPLE, FIRST_CALL),
    (GEN, "model returns a dict", TypeError, DICT, FIRST_CALL),
    (GEN, "model on another device", ValueError, r"the model is on meta but \S+ is on cpu; .*\.to\(", NO_CALL),
    (GEN, "out_dir below a file", NotADirectoryError, r"a_file is a file, not a folder", NO_CALL),
    (GEN, "out_dir not writable", PermissionError, r"not writable", NO_CALL),
    # uae generate, exit status 2: eps/steps, missing files and pickled state dicts are in tests/test_cli.py
    (CLI, "rank 1", EXIT_2, r"must hold a non-empty array \[N, \.\.\.\], got shape \(1568,\)", ANY),
    (CLI, CHANNELS, EXIT_2, _shape("2, 3, 28, 28", r"the model \(ConvAutoencoder\) "), ANY),
    (CLI, "NaN", EXIT_2, r"contains NaN or Inf; clean the data", ANY),
    (CLI, "values outside [0, 1]", EXIT_2, r"outside \[0, 1\] .*; store 8-bit integers or floats in \[0, 1\]", ANY),
    (CLI, "empty batch", EXIT_2, r"must hold a non-empty array \[N, \.\.\.\], got shape \(0, 1, 28, 28\)", ANY),
    (CLI, "model returns a tuple", EXIT_2, TUPLE, ANY),
    (CLI, "model returns a dict", EXIT_2, DICT, ANY),
    (CLI, "empty (0-byte) data file", EXIT_2, r"data file \S+ is empty \(0 bytes\); save the data with", ANY),
    (CLI, "empty (0-byte) .npz data file", EXIT_2, r"data file \S+ is empty \(0 bytes\); save the data with", ANY),
    (CLI, "empty (0-byte) model file", EXIT_2, r"model file \S+ is empty \(0 bytes\); save a model with", ANY),
    (CLI, "random bytes as TorchScript model", EXIT_2, r"is neither a torch.export .pt2 nor a TorchScript file", ANY),
    (CLI, "random bytes as state dict", EXIT_2, r"is not a readable state dict of plain tensors", ANY),
    (CLI, "random bytes as .pt data", EXIT_2, r"not a readable tensor file .*; save the data with torch\.save", ANY),
    (CLI, "random bytes as .npz data", EXIT_2, r"is not a readable \.npz of plain arrays", ANY),
    (CLI, "pickled code as TorchScript model", EXIT_2, r"is neither a torch.export .pt2 nor a TorchScript file", ANY),
    (CLI, "pickled code in .npz data", EXIT_2, r"is not a readable \.npz of plain arrays: .*allow_pickle=False", ANY),
]


def _id(row) -> str:
    values = row.values if hasattr(row, "values") else row
    return f"{values[0]}: {values[1]}"


@pytest.mark.parametrize("surface, case, error, message, calls", ROWS, ids=[_id(r) for r in ROWS])
def test_bad_input_is_refused_with_a_message_naming_the_problem_and_the_fix(
    surface, case, error, message, calls, digits, tmp_path, capsys
):
    run, make_model, countable = SURFACES[surface]
    model = CountedCalls(make_model()) if countable else make_model()
    used_model, x, options = CASES[case](model, digits[:2].clone(), tmp_path)
    if error == EXIT_2:
        capsys.readouterr()
        assert run(used_model, x, options, tmp_path) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert re.search(message, err), err
        assert not (tmp_path / "out").exists()  # refused before any work
    else:
        with pytest.raises(error, match=message):
            run(used_model, x, options, tmp_path)
    if calls is not None:
        assert model.calls == calls
    assert not _marker(tmp_path).exists()  # no pickled payload ran


def test_every_surface_and_case_in_the_table_exists():
    rows = [r.values if hasattr(r, "values") else r for r in ROWS]
    assert {r[0] for r in rows} == set(SURFACES)
    assert {r[1] for r in rows} <= set(CASES)
    assert len({(r[0], r[1]) for r in rows}) == len(rows)


def test_kornia_passes_an_empty_batch_through_without_calling_the_model(digits):
    model = CountedCalls(_autoencoder())
    out = RandomUAE(model, p=1.0, **TINY)(digits[:0])
    assert out.shape == (0, 1, 28, 28)
    assert model.calls == 0


def test_data_a_rounding_error_outside_the_unit_range_is_named_so_with_its_digits():
    """1 + 1e-6 printed as "1" looked valid, and "divide by 255" was the wrong advice for it."""
    from uae_plugin import MinMaxAttack, Reconstruction
    from uae_plugin.experiments.models import DenseAutoencoder

    x = torch.rand(2, 1, 28, 28, dtype=torch.float64) * 0.5
    x[0, 0, 0, 0] = 1.0 + 1e-6
    with pytest.raises(ValueError, match=r"got range \[[0-9.e-]+, 1\.000001\]; values a rounding error outside"):
        MinMaxAttack(Reconstruction(DenseAutoencoder().double()), steps=1, seed=0)(x)

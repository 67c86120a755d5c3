"""``uae trial`` says what it does, and refuses what it cannot do before doing anything: a new user's own model
module and data files, run in this process through ``uae_plugin.cli.main``.

- the header states the rows actually scored (``--quick`` keeps the first ones), and ``--help`` states --quick's sizes;
- data out of range are refused when the file is opened, with the whole array's range and the real cause;
- every option checkable without the data is refused before any file is read or any plan printed;
- data that fit in memory reach ``run_trial`` as tensors (the trial costs what it costs on tensors), with the same
  scores as the lazy Dataset kept for data over the limit.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from support import USER_MODULE

import uae_plugin.cli.trial as cli_trial
from uae_plugin.cli import build_parser, main
from uae_plugin.experiments.data import animal_mnist_split

MODEL = ("--model", "ae.pt", "--model-class", "models.py:SilhouetteAE")
SMOKE = ("--quick", "--arms", "none", "--metrics", "clean", "--no-progress")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's folder: ``models.py`` (their class), ``ae.pt`` (its state dict), ``animals.npz`` (400 8-bit
    silhouettes with labels: 80 are held out as the test set) and ``test.npy`` (100 float rows in [0, 1])."""
    folder = tmp_path_factory.mktemp("trust")
    (folder / "models.py").write_text(USER_MODULE)
    namespace: dict = {}
    exec(USER_MODULE, namespace)  # the user's class, without importing their module here
    data = animal_mnist_split(n_train=400, n_test=100, seed=0)
    torch.manual_seed(0)
    model = namespace["SilhouetteAE"]()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(20):
        loss = torch.nn.functional.mse_loss(model(data["x_train"][:128]), data["x_train"][:128])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), folder / "ae.pt")
    np.savez(folder / "animals.npz", x=(data["x_train"] * 255).round().to(torch.uint8).numpy(), y=data["y_train"])
    np.save(folder / "test.npy", data["x_test"].numpy())
    return folder


def uae(project, monkeypatch, capsys, *args):
    """``uae trial ARGS`` run in ``project``: ``(exit status, stdout, stderr)``."""
    monkeypatch.chdir(project)
    capsys.readouterr()
    status = main(["trial", *map(str, args)])
    out = capsys.readouterr()
    return status, out.out, out.err


# --- 1. the header states the rows scored ----------------------------------------------------------------------


def test_help_states_the_sizes_of_a_quick_run(capsys):
    with pytest.raises(SystemExit):
        main(["trial", "--help"])
    assert "the first 128 training and 64 test rows" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("extra", "stated", "n_test"),
    [
        ((), "; the first 64 of 80 rows (20%) of --data held out as the test set (seed 0; --quick);", 64),
        (("--test-data", "test.npy"), "; test set test.npy (the first 64 of its 100 rows: --quick);", 64),
        (("--test-fraction", "0.1"), "; 40 rows (10%) of --data held out as the test set (seed 0);", 40),
    ],
)
def test_a_quick_header_states_the_rows_it_scores(project, monkeypatch, capsys, extra, stated, n_test, tmp_path):
    status, out, err = uae(project, monkeypatch, capsys, *MODEL, "--data", "animals.npz", *SMOKE, *extra,
                           "--out", tmp_path / "t")  # fmt: skip
    assert status == 0, err
    header = out.splitlines()[0]
    assert header.startswith("uae trial: SilhouetteAE on 128 training rows" + stated), header
    assert "(--quick: the first 128 training and 64 test rows" in header and "its numbers mean nothing" in header
    config = json.loads((tmp_path / "t" / "report.json").read_text())["config"]
    assert (config["n_train"], config["n_test"]) == (128, n_test)


# --- 2. out-of-range data: the whole array's range and the real cause, when the file is opened -----------------


def _bad_files(project):
    """``{file: (array, cause)}``: the extremes sit in the last rows, far from the rows read first."""
    rows = np.load(project / "test.npy")[:20]
    mean, std = 0.1307, 0.3081
    normalised = (rows - mean) / std
    normalised[-1, 0, 0, :3] = [-2.5, 4.0, 0.0]
    scaled = rows * 255
    scaled[-1, 0, 0, 0] = 254.5
    wide = (rows * 4095).astype(np.uint16)
    wide[-1, 0, 0, 0] = 4095
    too_big = rows * 300
    too_big[-1, 0, 0, 0] = 300.0
    np.save(project / "normalised.npy", normalised)
    np.savez(project / "scaled.npz", x=scaled)
    torch.save(torch.from_numpy(wide.astype(np.int32)), project / "wide.pt")
    np.save(project / "too_big.npy", too_big)
    return {
        "normalised.npy": (normalised, "negative values mean normalised data: undo the normalisation (x * std + mean)"),
        "scaled.npz": (scaled, "floats in [0, 255] are 8-bit values stored as floats: divide them by 255"),
        "wide.pt": (wide, "integers are read as 8-bit values and divided by 255: rescale wider ones"),
        "too_big.npy": (too_big, "floats in [0, 1] were expected, these reach 300: rescale the data to [0, 1]"),
    }


def test_out_of_range_data_are_refused_at_open_with_the_whole_range_and_the_cause(project, monkeypatch, capsys):
    for name, (array, cause) in _bad_files(project).items():
        for option in ("--data", "--test-data"):
            data = (option, name) if option == "--data" else ("--data", "animals.npz", option, name)
            status, out, err = uae(project, monkeypatch, capsys, *MODEL, *data, *SMOKE, "--out", "refused")
            assert status == 2 and out == "" and len(err.strip().splitlines()) == 1, (name, out, err)
            lo, hi = float(array.min()), float(array.max())
            assert f"error: {name} has values outside [0, " in err and f"(range [{lo:.4g}, {hi:.4g}])" in err, err
            assert cause in err, err
    assert not (project / "refused").exists()


# --- 3. options refused before the data are read or a plan is printed ------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--seeds", "2"), "--seeds takes a list: seeds must hold at least 2 distinct seeds"),
        (("--seeds", "0", "0"), "--seeds must hold at least 2 distinct seeds"),
        (("--eps", "-1"), "--eps must be a finite number > 0, got -1.0"),
        (("--arms", "foo"), "--arms: unknown arm 'foo'; choose from none, copy"),
        (("--metrics", "clean", "robustness"), "--metrics: unknown metric 'robustness'"),
        (("--metrics", "knn"), "--metrics: 'knn' scores an encoder's features"),
        (("--test-eps", "2"), "--test-eps must be an L-inf budget in (0, 1]"),
        (("--target", "clean", "--task", "contrastive"), "--target: 'clean' (train an augmented row to reconstruct"),
        (("--online-fraction", "0"), "--online-fraction must be a share of each batch in (0, 1]"),
        (("--fit-steps", "0"), "--fit-steps must be an int >= 1"),
        (("--batch-size", "0"), "--batch-size must be an int >= 1"),
        (("--robust-rows", "0"), "--robust-rows must be an int >= 1"),
        (("--test-fraction", "1"), "--test-fraction must be in (0, 1)"),
        (("--lr", "0"), "--lr must be a finite number > 0"),
        (("--steps", "0"), "--steps must be an int >= 1"),
    ],
)
@pytest.mark.parametrize("data", ["missing.npz", "animals.npz"])
def test_options_are_refused_before_the_data_are_read(project, monkeypatch, capsys, extra, message, data):
    status, out, err = uae(project, monkeypatch, capsys, *MODEL, "--data", data, *extra, "--out", "never")
    assert status == 2 and out == "", out  # no plan printed
    assert err.startswith(f"uae trial: error: {message}") and len(err.strip().splitlines()) == 1, err
    assert not (project / "never").exists()


# --- 4. data that fit in memory reach run_trial as tensors -----------------------------------------------------


def test_data_that_fit_reach_run_trial_as_tensors_with_the_scores_of_the_lazy_reader(
    project, monkeypatch, capsys, tmp_path
):
    given = []

    def recording(model, x_train, x_test, **kwargs):
        given.append((x_train, x_test))
        return run_trial(model, x_train, x_test, **kwargs)

    run_trial = cli_trial.run_trial
    monkeypatch.setattr(cli_trial, "run_trial", recording)
    argv = (*MODEL, "--data", "animals.npz", *SMOKE)
    status, out, err = uae(project, monkeypatch, capsys, *argv, "--out", tmp_path / "memory")
    assert status == 0, err
    x_train, x_test = given[-1]
    assert torch.is_tensor(x_train) and torch.is_tensor(x_test) and "read from the files" not in out
    raw = torch.from_numpy(np.load(project / "animals.npz")["x"]).float() / 255
    keep, held = cli_trial.split_rows(400, 0.2)
    assert torch.equal(x_train, raw[keep[:128]]) and torch.equal(x_test, raw[held[:64]])

    monkeypatch.setattr(cli_trial, "memory_limit", lambda: 1)  # over the limit: the lazy Datasets, said so
    status, out, err = uae(project, monkeypatch, capsys, *argv, "--out", tmp_path / "lazy")
    assert status == 0, err
    assert not torch.is_tensor(given[-1][0]) and "the rows are read from the files at every fine-tuning step" in out
    scores = [json.loads((tmp_path / f / "report.json").read_text())["scores"] for f in ("memory", "lazy")]
    assert scores[0] == scores[1]


def test_the_built_in_digits_are_read_as_tensors_and_the_header_states_the_digits_scored():
    args = build_parser().parse_args(["trial", "--model", "m", "--out", "o", "--quick", "--task", "contrastive"])
    data = cli_trial.trial_data(args)
    assert torch.is_tensor(data["x_train"]) and tuple(data["x_train"].shape) == (128, 1, 28, 28)
    assert tuple(data["x_test"].shape) == (64, 1, 28, 28) and tuple(data["y_test"].shape) == (64,)
    assert data["how"] == "the built-in MNIST test split (the first 64 of its 1000 digits: --quick)"

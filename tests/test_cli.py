"""The ``uae`` command line, run as a user would (subprocess of the installed console script's module)."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from uae_plugin.generation import load_generated


def uae(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "uae_plugin.cli", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def generate_conv(model_file, out, *extra):
    """``uae generate`` of a ``conv`` state dict into ``out``, without a progress bar."""
    return uae("generate", "--model", model_file, "--model-class", "conv", "--out", out, "--no-progress", *extra)


@pytest.fixture(scope="module")
def state_dict_file(conv_ae, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "conv_ae.pt"
    torch.save(conv_ae.state_dict(), path)
    return path


def test_help_explains_every_command():
    out = uae("--help")
    assert out.returncode == 0
    for command in ("trial", "generate", "demo"):
        assert command in out.stdout
        assert uae(command, "--help").returncode == 0


def test_generate_from_a_state_dict_writes_a_loadable_uae_set(state_dict_file, tmp_path):
    out = generate_conv(
        state_dict_file, tmp_path / "u", "--limit", 24, "--chunk-size", 10, "--steps", 4, "--mine-steps", 2
    )
    assert out.returncode == 0, out.stderr
    assert "success rate" in out.stdout
    res = load_generated(tmp_path / "u")
    assert res["adv"].shape == (24, 1, 28, 28)
    assert torch.equal(res["index"], torch.arange(24))


def test_generate_from_torchscript_equals_the_state_dict_run(conv_ae, state_dict_file, tmp_path):
    scripted = tmp_path / "conv_ae.ts"
    torch.jit.script(conv_ae).save(str(scripted))
    common = ("--limit", 8, "--steps", 3, "--mine-steps", 1, "--no-progress")
    assert uae("generate", "--model", scripted, "--out", tmp_path / "a", *common).returncode == 0
    assert generate_conv(state_dict_file, tmp_path / "b", *common).returncode == 0
    assert torch.allclose(load_generated(tmp_path / "a")["adv"], load_generated(tmp_path / "b")["adv"], atol=1e-4)


def test_generate_reads_npz_data(state_dict_file, digits, tmp_path):
    np.savez(tmp_path / "d.npz", x=(digits[:6].numpy() * 255).astype(np.uint8))
    out = generate_conv(state_dict_file, tmp_path / "u", "--data", tmp_path / "d.npz", "--steps", 2, "--mine-steps", 1)
    assert out.returncode == 0, out.stderr
    assert load_generated(tmp_path / "u")["adv"].shape == (6, 1, 28, 28)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _malicious(path):
    with open(path, "wb") as fh:
        pickle.dump({"weight": _RunsCode()}, fh)


@pytest.mark.parametrize("role", ["--model", "--data"])
def test_a_pickle_that_would_run_code_is_refused_not_run(state_dict_file, tmp_path, role):
    bad = tmp_path / "bad.pt"
    _malicious(bad)
    args = (
        ["--model", bad, "--model-class", "conv"]
        if role == "--model"
        else ["--model", state_dict_file, "--model-class", "conv", "--data", bad]
    )
    out = uae("generate", *args, "--out", tmp_path / "u", cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr and "error:" in out.stderr
    assert not (tmp_path / "PWNED").exists()


BAD = [
    ("missing model", ["--model", "nope.pt"], "does not exist"),
    ("a state dict without its class", ["--model", "{sd}"], "holds a state dict: pass --model-class"),
    ("unknown class", ["--model", "{sd}", "--model-class", "nope"], "model class must be"),
    ("wrong class", ["--model", "{sd}", "--model-class", "dense"], "does not fit dense"),
    ("eps zero", ["--model", "{sd}", "--model-class", "conv", "--eps", "0"], "eps must be"),
    ("steps zero", ["--model", "{sd}", "--model-class", "conv", "--steps", "0"], "steps must be"),
    ("chunk zero", ["--model", "{sd}", "--model-class", "conv", "--chunk-size", "0"], "chunk-size must be"),
    ("missing data", ["--model", "{sd}", "--model-class", "conv", "--data", "nope.npz"], "neither"),
]


@pytest.mark.parametrize("case, args, message", BAD, ids=[b[0] for b in BAD])
def test_bad_arguments_exit_2_with_one_line_and_no_traceback(state_dict_file, tmp_path, case, args, message):
    args = [a.replace("{sd}", str(state_dict_file)) for a in args]
    out = uae("generate", *args, "--out", tmp_path / "u", "--no-progress", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_an_unwritable_output_folder_is_refused(state_dict_file, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        out = uae("generate", "--model", state_dict_file, "--model-class", "conv", "--out", locked / "u")
        assert out.returncode == 2 and "not writable" in out.stderr
    finally:
        locked.chmod(0o700)


def test_an_output_folder_below_a_file_is_refused_before_any_work(state_dict_file, tmp_path):
    (tmp_path / "file").write_text("user data")
    out = uae("generate", "--model", state_dict_file, "--model-class", "conv", "--out", tmp_path / "file" / "u")
    assert out.returncode == 2 and "is a file, not a folder" in out.stderr
    assert (tmp_path / "file").read_text() == "user data"


def test_demo_quick_writes_a_trial_per_model_and_prints_the_tables(tmp_path):
    out = uae("demo", "--quick", "--out", tmp_path / "report", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "## conv autoencoder" in out.stdout and "| uae@0.3 |" in out.stdout
    for name in ("metrics.json", "report.md", "dense/report.json", "dense/change_vs_none.png", "sparse/examples.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


def test_uae_evaluate_points_to_uae_trial():
    out = uae("evaluate", "--uaes", "u")
    assert out.returncode == 2
    pointer = "'uae evaluate' was folded into 'uae trial': uae trial --model MODEL --data DATA --out DIR"
    assert out.stderr.strip() == f"uae: {pointer}"

"""How ``uae generate`` and ``uae trial`` read a user's model: .pt2 programs, classes from files with constructor
arguments, whole pickled models refused unread; files written as the umask says; one progress bar."""

import os
import subprocess
import sys

import pytest
import torch

from uae_plugin.cli import main
from uae_plugin.generation import load_generated

COLOR_MODULE = """
import pathlib
from torch import nn

pathlib.Path(__file__).with_name("imported.txt").write_text("imported")  # marks that this module was imported


class ColorAE(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, x):
        return self.net(x).sigmoid()
"""
GENERATE = ["generate", "--data", "mnist", "--limit", "4", "--steps", "2", "--no-progress"]


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """A user's folder holding mymodels_<test>.py (ColorAE), colour data and ColorAE(width=6)'s state dict."""
    name = f"mymodels_{os.urandom(4).hex()}"  # a fresh module name per test: sys.modules keeps imports
    (tmp_path / f"{name}.py").write_text(COLOR_MODULE)
    torch.save(torch.rand(4, 3, 8, 8), tmp_path / "colour.pt")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    (tmp_path / "imported.txt").unlink()
    torch.save(module.ColorAE(width=6).state_dict(), tmp_path / "weights.pt")
    torch.save(module.ColorAE(width=6), tmp_path / "whole.pt")
    return tmp_path, name


def _error(capsys, argv):
    assert main(argv) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("with_class", [False, True], ids=["no --model-class", "--model-class"])
def test_a_whole_pickled_model_is_refused_unread_with_the_state_dict_fix(user_folder, capsys, with_class):
    folder, name = user_folder
    extra = ["--model-class", f"{name}:ColorAE", "--model-kwargs", '{"width": 6}'] if with_class else []
    err = _error(capsys, [*GENERATE, "--data", "colour.pt", "--model", "whole.pt", *extra, "--out", "u"])
    assert "whole.pt holds a pickled object (a whole model saved with torch.save(model)?)" in err
    assert "save torch.save(model.state_dict(), path) and pass --model-class" in err
    assert not (folder / "imported.txt").exists()  # never unpickled: the class's module was not even imported


def test_a_state_dict_without_model_class_is_told_to_pass_it(user_folder, capsys):
    err = _error(capsys, [*GENERATE, "--model", "weights.pt", "--out", "u"])
    assert "weights.pt holds a state dict: pass --model-class ('conv', 'dense'" in err


@pytest.mark.parametrize("form", ["module", "file"])
def test_a_class_from_a_module_or_a_file_is_built_with_model_kwargs(user_folder, form):
    folder, name = user_folder
    spec = f"{name}:ColorAE" if form == "module" else f"{folder / name}.py:ColorAE"
    argv = [*GENERATE, "--data", "colour.pt", "--model", "weights.pt", "--model-class", spec]
    assert main([*argv, "--model-kwargs", '{"width": 6}', "--out", "u"]) == 0
    assert load_generated("u")["adv"].shape == (4, 3, 8, 8)


def test_model_kwargs_that_do_not_fit_the_class_or_the_weights_are_named(user_folder, capsys):
    _, name = user_folder
    argv = [*GENERATE, "--data", "colour.pt", "--model", "weights.pt", "--model-class", f"{name}:ColorAE"]
    assert "cannot build" in _error(capsys, [*argv, "--model-kwargs", '{"depth": 2}', "--out", "u"])
    assert "--model-kwargs must be a JSON object" in _error(capsys, [*argv, "--model-kwargs", "width=6", "--out", "u"])
    assert "does not fit" in _error(capsys, [*argv, "--out", "u"])  # width 4 by default, the weights have 6


def test_a_module_in_the_current_folder_imports_from_the_command_line_as_python_m_does(user_folder):
    folder, name = user_folder
    argv = [*GENERATE, "--data", "colour.pt", "--model", "weights.pt", "--model-class", f"{name}:ColorAE"]
    run = subprocess.run(
        [sys.executable, "-m", "uae_plugin.cli", *argv, "--model-kwargs", '{"width": 6}', "--out", "u"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert run.returncode == 0, run.stderr


def test_a_torch_export_program_gives_the_uaes_of_its_state_dict(conv_ae, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save(conv_ae.state_dict(), "conv.pt")
    batch = torch.export.Dim("batch")
    program = torch.export.export(conv_ae, (torch.rand(2, 1, 28, 28),), dynamic_shapes=({0: batch},))
    torch.export.save(program, "conv.pt2")
    assert main([*GENERATE, "--model", "conv.pt2", "--out", "a"]) == 0
    assert main([*GENERATE, "--model", "conv.pt", "--model-class", "conv", "--out", "b"]) == 0
    assert torch.allclose(load_generated("a")["adv"], load_generated("b")["adv"], atol=1e-6)


def test_chunk_and_manifest_files_honour_the_umask(conv_ae, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save(conv_ae.state_dict(), "conv.pt")
    old = os.umask(0o022)
    try:
        assert main([*GENERATE, "--model", "conv.pt", "--model-class", "conv", "--out", "u"]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "u").iterdir() if p.is_file()}
    assert "manifest.json" in modes and any(n.startswith("chunk-") for n in modes)
    assert set(modes.values()) == {0o644}, modes


def test_generate_shows_one_progress_bar_not_the_attack_steps_inside_it(conv_ae, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    torch.save(conv_ae.state_dict(), "conv.pt")
    argv = [a for a in GENERATE if a != "--no-progress"]
    assert main([*argv, "--model", "conv.pt", "--model-class", "conv", "--chunk-size", "2", "--out", "u"]) == 0
    err = capsys.readouterr().err
    assert "UAE" in err and "sample" in err
    assert "MinMax" not in err

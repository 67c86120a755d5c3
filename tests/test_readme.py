"""The README's and the docs' Python blocks run as written, and the README's command runs at --quick size.

A docs page's blocks continue the README's 30-second example, as its text says: the README's blocks run first,
then the page's, in one namespace, in a scratch folder.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


def _run(path: Path, namespace: dict) -> None:
    for block in _blocks(path, "python"):
        exec(compile(block, str(path), "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p, "python")], ids=lambda p: p.name)
def test_python_blocks_run_as_written(page, tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    _run(ROOT / "README.md", namespace)
    assert namespace["res"].adv.shape == namespace["x"].shape
    if page.name != "README.md":
        _run(page, namespace)
    if page.name == "generation.md":  # the page's command then reads the model file its Python block saved
        (command,) = [line for block in _blocks(page, "bash") for line in block.splitlines() if "--limit 64" in line]
        done = subprocess.run([sys.executable, "-m", "uae_plugin.cli", *command.split()[1:], "--steps", "2"],
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "64 UAEs in uaes-cli" in done.stdout


def test_the_readme_demo_command_runs_at_quick_size(tmp_path):
    (commands,) = _blocks(ROOT / "README.md", "bash")[:1]
    parts = [part.strip() for line in commands.splitlines() for part in line.split("&&")]
    demo = next(part for part in parts if "uae demo" in part)
    args = demo.split()[1:]  # ".venv/bin/uae demo --out uae-demo" -> ["demo", "--out", "uae-demo"]
    done = subprocess.run([sys.executable, "-m", "uae_plugin.cli", *args, "--quick"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "smoke run" in done.stdout and (tmp_path / "uae-demo" / "dense" / "change_vs_none.png").exists()
    assert "uae trial (arm x seed)" in done.stderr and "14/14" in done.stderr  # the progress bar, to its end

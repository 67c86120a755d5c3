"""The scripts in examples/ run end to end at a tiny size."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize(
    "script", ["attack_autoencoder.py", "torchattacks_uae.py", "kornia_augmentation.py", "lightly_simclr.py"]
)
def test_example_runs_at_tiny_size(script):
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--tiny"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert "success rate" in out.stdout

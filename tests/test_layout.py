"""The architecture, checked: the core never imports the command line, the experiments or an adapter,
and it runs in an environment with none of the optional frameworks installed."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import uae_plugin

PACKAGE = Path(uae_plugin.__file__).parent
OUTSIDE_THE_CORE = ("uae_plugin.cli", "uae_plugin.experiments", "uae_plugin.integrations")


def _core_modules() -> list[Path]:
    outside = {PACKAGE / name.split(".")[1] for name in OUTSIDE_THE_CORE}
    return [p for p in PACKAGE.rglob("*.py") if not any(o in p.parents for o in outside)]


def _imported(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module) if part)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_core_imports_nothing_outside_it():
    core = _core_modules()
    assert PACKAGE / "minmax.py" in core and PACKAGE / "generation" / "run.py" in core
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(n for n in _imported(p) if n.startswith(OUTSIDE_THE_CORE)) for p in core
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_import_scan_sees_relative_imports(tmp_path):
    # the scan itself can fail: a relative import of the CLI from a core module is caught
    path = PACKAGE / "minmax.py"
    names = _imported(path)
    assert "uae_plugin.criteria" in names
    probe = ast.parse("from .cli import main\nfrom ..experiments import data")
    assert any(isinstance(n, ast.ImportFrom) and n.level == 1 for n in ast.walk(probe))


BLOCKER = """
import sys
OPTIONAL = {"torchattacks", "kornia", "lightly", "timm", "pytorch_lightning", "lightning", "torchvision",
            "mlxtend", "matplotlib", "sklearn", "PIL"}
for name in OPTIONAL:  # None in sys.modules: "import name" raises ModuleNotFoundError, find_spec gives None
    sys.modules[name] = None
"""


def _run_without_extras(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, timeout=300, check=False
    )


def test_the_core_runs_with_torch_numpy_scipy_and_tqdm_only():
    code = """
import torch
from torch import nn
from uae_plugin import MinMaxAttack, Reconstruction, mutual_information, generate_dataset
layers = (nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))
ae = nn.Sequential(*layers)
x = torch.rand(4, 1, 28, 28)
res = MinMaxAttack(Reconstruction(ae), steps=3, seed=0)(x)
assert res.adv.shape == x.shape and mutual_information(x, res.adv).shape == (4,)
from uae_plugin.cli import main
loaded = sorted(m for m, mod in sys.modules.items() if m.split(".")[0] in OPTIONAL and mod is not None)
print("loaded:", loaded)
"""
    done = _run_without_extras(code)
    assert done.returncode == 0, done.stderr
    assert "loaded: []" in done.stdout


@pytest.mark.parametrize(
    ("code", "extra"),
    [
        ("import uae_plugin.integrations.torchattacks", "torchattacks"),
        ("import uae_plugin.integrations.kornia", "kornia"),
        ("import uae_plugin.integrations.lightly", "lightly"),
        ("from uae_plugin import Contrastive\nfrom torch import nn\nContrastive(nn.Flatten())", "lightly"),
    ],
)
def test_a_missing_framework_is_named_with_its_extra(code, extra):
    done = _run_without_extras(code)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and f"pip install 'uae-plugin[{extra}]'" in last, done.stderr

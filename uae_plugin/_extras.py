"""Optional frameworks: one clear error, naming the extra to install, when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

# top-level module -> the extra of uae-plugin that installs it
EXTRAS = {
    "torchattacks": "torchattacks",
    "kornia": "kornia",
    "lightly": "lightly",
    "timm": "lightly",
    "pytorch_lightning": "lightly",
    "torchvision": "lightly",
    "mlxtend": "demo",
    "matplotlib": "demo",
    "sklearn": "demo",
}


def require(module: str, needed_by: str) -> ModuleType:
    """``importlib.import_module(module)``; if its package is not installed, an ImportError of one line:
    ``<needed_by> needs <package>, which is not installed: pip install 'uae-plugin[<extra>]'``.
    An ImportError from inside an installed package is raised as it is."""
    root = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if (err.name or "").split(".")[0] != root:
            raise
        raise ImportError(
            f"{needed_by} needs {root}, which is not installed: pip install 'uae-plugin[{EXTRAS[root]}]'"
        ) from None

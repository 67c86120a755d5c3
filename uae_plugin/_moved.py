"""Old module paths that still import, with a DeprecationWarning naming the new one.

``import uae_plugin.data`` (moved to ``uae_plugin.experiments.data``) gives a thin module whose attributes are
the new module's: every public name keeps working for one release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings

MOVED = {
    "uae_plugin.commands": "uae_plugin.cli.commands",
    "uae_plugin.loading": "uae_plugin.cli.loading",
    **{
        f"uae_plugin.{name}": f"uae_plugin.experiments.{name}"
        for name in (
            "concrete_autoencoder",
            "data",
            "ground_truth",
            "models",
            "ssl_evaluation",
            "tabular_data",
        )
    },
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names in :data:`MOVED`; the module it makes forwards attribute lookups to the new one."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        target = importlib.import_module(new)
        alias = types.ModuleType(spec.name, f"Deprecated alias of {new}.")
        alias.__getattr__ = lambda name: getattr(target, name)  # PEP 562
        alias.__dir__ = lambda: dir(target)
        alias.__all__ = getattr(target, "__all__", [n for n in vars(target) if not n.startswith("_")])
        return alias

    def exec_module(self, module):
        """Nothing to run: the new module was imported in ``create_module``."""


def install() -> None:
    if not any(isinstance(finder, _Alias) for finder in sys.meta_path):
        sys.meta_path.append(_Alias())

"""linreg-collapse: model collapse in linear regression and its cure by token-level editing (ToEdit).

Simulate retraining regimes (:func:`simulate`), run grids of them (:func:`sweep`), derive their test
errors symbolically (:mod:`linreg_collapse.theory`) and check one against the other
(:mod:`linreg_collapse.verify`).

Names that need JAX are imported on first use, so ``import linreg_collapse`` (and ``linreg-collapse
--help``) stays fast.
"""

import importlib
import sys
import types

from .jax_setup import configure_xla

configure_xla()  # before any JAX computation: see jax_setup (a jaxlib 0.10 deadlock on few cores)

from .config import SimConfig, base_error  # noqa: E402
from .errors import InputError  # noqa: E402

# Exported name -> the submodule defining it, imported on first access.
_LAZY = {"simulate": "simulate", "SimResult": "simulate", "sweep": "sweep"}

__all__ = ["SimConfig", "SimResult", "simulate", "sweep", "base_error", "InputError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)


class _Package(types.ModuleType):
    """Keeps ``linreg_collapse.simulate`` / ``.sweep`` the functions: importing a submodule binds it as an
    attribute of its package, which would otherwise replace the exported function of the same name."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name and value.__name__ == f"{__name__}.{name}":
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

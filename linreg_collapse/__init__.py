"""linreg-collapse: model collapse in linear regression and its cure by token-level editing (ToEdit).

Simulate retraining regimes (:func:`simulate`), derive their test errors symbolically
(:mod:`linreg_collapse.theory`) and check one against the other (:mod:`linreg_collapse.verify`).
"""

from .jax_setup import configure_xla

configure_xla()  # before any JAX computation: see jax_setup (a jaxlib 0.10 deadlock on few cores)

from .config import SimConfig, base_error  # noqa: E402
from .errors import InputError  # noqa: E402
from .simulate import SimResult, simulate  # noqa: E402

__all__ = ["SimConfig", "SimResult", "simulate", "base_error", "InputError"]
__version__ = "0.1.0"

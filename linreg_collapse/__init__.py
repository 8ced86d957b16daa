"""linreg-collapse: model collapse in linear regression and its cure by token-level editing (ToEdit).

Simulate retraining regimes (:func:`simulate`), derive their test errors symbolically
(:mod:`linreg_collapse.theory`) and check one against the other (:mod:`linreg_collapse.verify`).
"""

from .config import SimConfig, base_error
from .errors import InputError
from .simulate import SimResult, simulate

__all__ = ["SimConfig", "SimResult", "simulate", "base_error", "InputError"]
__version__ = "0.1.0"

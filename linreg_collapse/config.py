"""Simulation configuration and its validation.

Every constraint a user can break is checked here, before any computation, and reported as one
:class:`~linreg_collapse.errors.InputError` naming the value and the constraint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Optional

import numpy as np

from .errors import InputError, require

REGIMES = ("replace", "accumulate", "accumulate-subsample", "edit")
EDIT_OPS = ("resample", "perturb")
MASKS = ("random", "disjoint", "threshold", "file")
DESIGNS = ("fixed", "fresh")
COVARIANCES = ("identity", "powerlaw")
DTYPES = ("float64", "float32")
SAMPLERS = ("labels", "stats")
STATS_REGIMES = ("replace", "accumulate")  # regimes whose fit reads only X^T X and X^T Y
WSTARS = ("flat", "powerlaw")
DEFAULT_WSTAR_EXPONENT = 1.0


@dataclasses.dataclass(frozen=True)
class SimConfig:
    """One simulation: a regime retrained for ``generations`` generations in ``trials`` trials.

    Generation 0 is the OLS fit on real data ``Y_0 = X w* + E_0``; generation n >= 1 is fit on
    data built from generation n-1 according to ``regime`` (see :mod:`linreg_collapse.regimes`).

    Attributes:
      regime: ``replace`` | ``accumulate`` | ``accumulate-subsample`` | ``edit``.
      T, d: samples per generation and dimension; OLS needs ``T >= d + 2`` for a finite error.
      sigma: label-noise standard deviation.
      generations: number of retraining generations N after generation 0.
      trials: independent repetitions (vmapped).
      seed: PRNG seed; the same seed gives the same numbers.
      design: ``fixed`` (one X for every generation) or ``fresh`` (new X each generation).
      cov: ``identity`` or ``powerlaw`` (eigenvalues k^-alpha normalised to trace d).
      alpha: power-law exponent (``cov="powerlaw"``).
      edit_op: ``resample`` (Ytilde = X w_{n-1} + E_n) or ``perturb`` (Ytilde = Y_{n-1} + E_n).
      mask: editing-matrix schedule: ``random`` | ``disjoint`` | ``threshold`` | ``file``.
      edit_fraction: p, the share of positions edited (``random``; first generation of ``disjoint``).
      decay: eta, the per-generation decay of the ``disjoint`` edit fraction p eta^(n-1).
      threshold: tau; ``threshold`` masks edit position t iff |Y_{n-1,t} - x_t^T w_{n-1}| <= tau sigma.
      masks: user masks of shape [generations, T] with entries in [0, 1] (``mask="file"``).
      dtype: ``float64`` (default; what theory is checked against) or ``float32``.
      sampler: how synthetic data is drawn: ``labels`` (X and every label; draw for draw the same as a
        NumPy loop fed the same keys) or ``stats`` (X^T X and X^T Y from their exact law, d normals instead
        of T; replace and accumulate with OLS fits only). None (default): ``stats`` where it applies, else ``labels``;
        :attr:`effective_sampler` says which runs.
      ridge: lambda >= 0; every fit is w = (X^T X + lambda N I)^{-1} X^T Y on its N samples (N = T, or
        (n + 1) T for accumulate); lambda = 0 is OLS for T >= d and the minimum-norm interpolator for T < d.
      wstar: ground truth in Sigma's eigenbasis, unit norm: ``flat`` (1/sqrt(d) each) or ``powerlaw``
        (w*_k ∝ k^(-wstar_exponent/2)).
      wstar_exponent: DELTA of ``powerlaw`` (None: DEFAULT_WSTAR_EXPONENT; only with wstar="powerlaw").
      allow_infinite_mean: run lambda = 0 with d - 1 <= T <= d + 1, where the mean error is infinite.
    """

    regime: str = "replace"
    T: int = 100
    d: int = 10
    sigma: float = 1.0
    generations: int = 20
    trials: int = 1000
    seed: int = 0
    design: str = "fixed"
    cov: str = "identity"
    alpha: float = 1.0
    edit_op: str = "resample"
    mask: str = "random"
    edit_fraction: float = 0.1
    decay: float = 1.0
    threshold: float = 1.0
    masks: Optional[np.ndarray] = dataclasses.field(default=None, compare=False, repr=False)
    dtype: str = "float64"
    sampler: Optional[str] = None
    ridge: float = 0.0
    wstar: str = "flat"
    wstar_exponent: Optional[float] = None
    allow_infinite_mean: bool = False

    def __post_init__(self):
        validate(self)

    @property
    def is_ols(self) -> bool:
        """Whether every fit is OLS with a finite mean error: ridge = 0 and T >= d + 2."""
        return self.ridge == 0 and self.T > self.d + 1

    @property
    def base(self) -> Optional[float]:
        """sigma^2 d / (T - d - 1), the expected test error of one OLS fit on real data; None unless is_ols."""
        return base_error(self.T, self.d, self.sigma) if self.is_ols else None

    @property
    def delta(self) -> float:
        """The source exponent DELTA of a ``powerlaw`` w* (the default when none is given)."""
        return DEFAULT_WSTAR_EXPONENT if self.wstar_exponent is None else float(self.wstar_exponent)

    @property
    def effective_sampler(self) -> str:
        """The sampler that runs: ``sampler``, or by default ``stats`` where it applies (replace and
        accumulate with OLS fits: the stats law draws X^T Y from the Gram factor the OLS fit solves with)."""
        if self.sampler is not None:
            return self.sampler
        return "stats" if self.regime in STATS_REGIMES and self.is_ols else "labels"

    def to_dict(self) -> dict:
        """JSON-ready description (user masks summarised by their shape and SHA-256; the sampler that runs)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "masks"}
        out["sampler"] = self.effective_sampler
        if self.masks is not None:
            out["masks_shape"] = list(self.masks.shape)
            out["masks_sha256"] = hashlib.sha256(np.ascontiguousarray(self.masks, np.float64).tobytes()).hexdigest()
        return out


def base_error(T: int, d: int, sigma: float) -> float:
    """E||w_OLS - w*||^2_Sigma = sigma^2 d / (T - d - 1) for T > d + 1 (mean of the inverse Wishart)."""
    return sigma**2 * d / (T - d - 1)


def minnorm_base_error(T: int, d: int, sigma: float) -> float:
    """E||w_minnorm - w*||^2 = (1 - T/d) + sigma^2 T / (d - T - 1) for an isotropic design, T < d - 1 and
    ||w*|| = 1 (the bias keeps the part of w* outside the row space; theory.minnorm derives it: "minnorm")."""
    return (1 - T / d) + sigma**2 * T / (d - T - 1)


# Which settings each field needs in order to have any effect: field -> {setting field: values it may take}.
# A field given explicitly while one of its settings takes another value is refused (see inapplicable).
# To add a field that matters only in some runs, add one row here, e.g. ``"ridge": {"estimator": ("ridge",)}``;
# fields without a row apply to every run.
APPLIES_WHEN: dict[str, dict[str, tuple]] = {
    "alpha": {"cov": ("powerlaw",)},
    "edit_op": {"regime": ("edit",)},
    "mask": {"regime": ("edit",)},
    "edit_fraction": {"regime": ("edit",), "mask": ("random", "disjoint")},
    "decay": {"regime": ("edit",), "mask": ("disjoint",)},
    "threshold": {"regime": ("edit",), "mask": ("threshold",)},
    "masks": {"regime": ("edit",), "mask": ("file",)},
}


def inapplicable(settings, given, table: dict = APPLIES_WHEN) -> Optional[tuple[str, str, str]]:
    """The first field of ``given`` (fields set explicitly) that ``settings`` gives no effect, per
    ``table`` (default :data:`APPLIES_WHEN`), as ``(field, setting, allowed values)``; None when every
    given field applies.

    ``settings``: a SimConfig or any object with the setting fields as attributes; a setting that is
    None (left open, e.g. ``bound`` without ``--mask``) admits every value.
    """
    for field in given:
        for setting, allowed in table.get(field, {}).items():
            value = getattr(settings, setting, None)
            if value is not None and value not in allowed:
                return field, setting, " or ".join(map(str, allowed))
    return None


def _finite(name: str, value) -> None:
    require(isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value),
            f"{name}={value!r} must be a finite number")


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    require(value in options, f"{name}={value!r} must be one of {', '.join(options)}")


def _integer(name: str, value, minimum: int) -> None:
    require(isinstance(value, (int, np.integer)) and not isinstance(value, bool),
            f"{name}={value!r} must be an integer")
    require(value >= minimum, f"{name}={value} must be >= {minimum}")


def validate(cfg: SimConfig) -> None:
    """Raise :class:`InputError` on the first constraint ``cfg`` breaks."""
    _choice("regime", cfg.regime, REGIMES)
    _choice("design", cfg.design, DESIGNS)
    _choice("cov", cfg.cov, COVARIANCES)
    _choice("edit_op", cfg.edit_op, EDIT_OPS)
    _choice("mask", cfg.mask, MASKS)
    _choice("dtype", cfg.dtype, DTYPES)
    _integer("d", cfg.d, 1)
    _integer("T", cfg.T, 1)
    _choice("wstar", cfg.wstar, WSTARS)
    _finite("ridge", cfg.ridge)
    require(cfg.ridge >= 0, f"ridge={cfg.ridge} must be >= 0")
    if cfg.wstar_exponent is not None:
        _finite("wstar_exponent", cfg.wstar_exponent)
        require(cfg.wstar == "powerlaw", f"wstar_exponent={cfg.wstar_exponent} needs wstar='powerlaw' "
                                         f"(got wstar={cfg.wstar!r})")
    require(isinstance(cfg.allow_infinite_mean, bool), "allow_infinite_mean must be True or False")
    require(cfg.ridge > 0 or not cfg.d - 1 <= cfg.T <= cfg.d + 1 or cfg.allow_infinite_mean,
            f"T={cfg.T} with d={cfg.d} and ridge=0: the mean test error is infinite for d - 1 <= T <= d + 1 "
            f"(use ridge > 0, another T, or allow_infinite_mean / --allow-infinite-mean)")
    require(cfg.ridge > 0 or cfg.T >= cfg.d - 1 or cfg.regime != "accumulate" or cfg.design != "fresh",
            f"T={cfg.T} < d - 1 = {cfg.d - 1}: accumulate with design='fresh' and ridge=0 would need the minimum-norm "
            f"fit of a growing pool, which is not implemented (use ridge > 0 or design='fixed')")
    _integer("generations", cfg.generations, 0)
    require(cfg.regime != "accumulate-subsample" or (cfg.generations + 1) << max(1, (cfg.T - 1).bit_length()) < 2**31,
            f"generations={cfg.generations} with T={cfg.T}: accumulate-subsample numbers its draws in int32 "
            f"((generations + 1) x 2^ceil(log2 T) must be < 2^31); lower --generations or --T")
    _integer("trials", cfg.trials, 2)
    _integer("seed", cfg.seed, 0)
    if cfg.sampler is not None:
        _choice("sampler", cfg.sampler, SAMPLERS)
        require(cfg.sampler == "labels" or cfg.regime in STATS_REGIMES,
                f"--sampler stats is not available for regime={cfg.regime!r}: it fits individual labels; "
                f"use --sampler labels (stats applies to {', '.join(STATS_REGIMES)})")
        require(cfg.sampler == "labels" or cfg.is_ols,
                f"--sampler stats needs OLS fits (ridge=0 and T >= d + 2; got ridge={cfg.ridge}, T={cfg.T}, "
                f"d={cfg.d}): use --sampler labels")
    for name in ("sigma", "alpha", "edit_fraction", "decay", "threshold"):
        _finite(name, getattr(cfg, name))
    require(cfg.sigma >= 0, f"sigma={cfg.sigma} must be >= 0")
    require(cfg.alpha >= 0, f"alpha={cfg.alpha} must be >= 0")
    require(0 <= cfg.edit_fraction <= 1, f"edit_fraction={cfg.edit_fraction} must lie in [0, 1]")
    require(0 < cfg.decay <= 1, f"decay={cfg.decay} must lie in (0, 1]")
    require(cfg.threshold >= 0, f"threshold={cfg.threshold} must be >= 0")
    if cfg.regime == "edit":
        require(cfg.design == "fixed",
                "design='fresh' is not defined for regime='edit': editing changes labels of the same examples, "
                "so the design must be 'fixed'")
        if cfg.mask == "file":
            _validate_masks(cfg.masks, cfg.generations, cfg.T)
    require(cfg.masks is None or (cfg.regime == "edit" and cfg.mask == "file"),
            "masks are given but only mask='file' with regime='edit' uses them")


def _validate_masks(masks, generations: int, T: int) -> None:
    require(masks is not None, "mask='file' needs masks of shape [generations, T]")
    masks = np.asarray(masks)
    require(masks.shape == (generations, T),
            f"masks shape {masks.shape} must be (generations, T) = ({generations}, {T})")
    require(np.issubdtype(masks.dtype, np.number) and not np.iscomplexobj(masks), "masks must be real numbers")
    require(bool(np.all(np.isfinite(masks))), "masks must be finite (found NaN or inf)")
    lo, hi = (float(masks.min()), float(masks.max())) if masks.size else (0.0, 0.0)
    require(lo >= 0 and hi <= 1, f"masks values must lie in [0, 1] (found min {lo:g}, max {hi:g})")


def load_masks(path: str) -> np.ndarray:
    """Read user masks from ``.npy`` or a whitespace/comma separated text file (one generation a row)."""
    try:
        if str(path).endswith(".npy"):
            arr = np.load(path, allow_pickle=False)
        else:
            arr = np.loadtxt(path, delimiter="," if str(path).endswith(".csv") else None, ndmin=2)
    except FileNotFoundError:
        raise InputError(f"masks file {path!r} does not exist") from None
    except (ValueError, OSError) as err:
        raise InputError(f"masks file {path!r} could not be read as numbers: {str(err).splitlines()[0]}") from None
    return np.asarray(arr, dtype=np.float64)

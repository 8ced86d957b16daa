"""Which theorem figures exist and the size of their simulations, importable without matplotlib or JAX
(``linreg-collapse figures`` registers its flags from here; :mod:`linreg_collapse.figures` draws them)."""

from __future__ import annotations

import dataclasses

from .config import SimConfig

# The figures of linreg_collapse.figures.FIGURES, in drawing order.
FIGURE_NAMES = ("error_vs_generation", "error_vs_edit_budget", "error_vs_samples_ratio", "edit_heatmap",
                "threshold_masks", "ridge_scaling", "ridge_lambda", "double_descent")


@dataclasses.dataclass(frozen=True)
class FigureSettings:
    """Size of the figure simulations; the defaults make the published figures.

    ``samples_T``: the sample sizes of :func:`~linreg_collapse.figures.figure_error_vs_samples_ratio`.
    ``grid_size``: the number of p (and eta) values of the heat maps; ``thresholds``: the tau of
    :func:`~linreg_collapse.figures.figure_threshold_masks`. Ridge figures: ``ridge_d`` and ``ridge_T``
    (scaling law, power-law spectrum), ``ridge_generations`` (the generations drawn), ``ridge_lambdas``
    (lambda grid points), ``double_descent_T`` (sample sizes of the double-descent figure, d = 50).
    """

    T: int = 50
    d: int = 10
    sigma: float = 1.0
    generations: int = 10
    trials: int = 500
    seed: int = 0
    samples_T: tuple[int, ...] = (25, 50, 200)
    grid_size: int = 7
    thresholds: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    ridge_d: int = 256
    ridge_T: tuple[int, ...] = (16, 32, 64, 128)
    ridge_generations: tuple[int, ...] = (0, 1, 5, 20)
    ridge_lambdas: int = 9
    double_descent_T: tuple[int, ...] = (5, 10, 20, 30, 40, 60, 80, 100, 150)

    def __post_init__(self):
        self.config("replace")  # SimConfig raises InputError on a bad T, d, sigma, generations, trials or seed

    def config(self, regime: str, **options) -> SimConfig:
        """The :class:`SimConfig` of ``regime`` at these settings (``options`` override any field)."""
        fields = dict(T=self.T, d=self.d, sigma=self.sigma, generations=self.generations,
                      trials=self.trials, seed=self.seed)
        return SimConfig(regime=regime, **{**fields, **options})

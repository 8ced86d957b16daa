"""Simulator: closed forms (seeded, stated tolerance, negative controls), draw-for-draw identities,
agreement with a plain NumPy loop fed the same noise, determinism and resume."""

from __future__ import annotations

import dataclasses
import importlib

import jax
import numpy as np
import pytest

from linreg_collapse import SimConfig, simulate
from linreg_collapse.design import uniform_below
from linreg_collapse.regimes import generation_keys

sim = importlib.import_module("linreg_collapse.simulate")  # the module (the package exports the function)

# One shape for every statistical test: JAX compiles each (regime, T, d, generations) once.
SHAPE = dict(T=40, d=8, generations=5, sigma=0.7, seed=11)
TRIALS = 3000
FEW = 64  # trials of the non-statistical tests: one trial count, so they share compiled programs
Z = 4.0  # a check passes when |simulated mean - formula| <= Z standard errors, at every generation


def agrees(result, relative_formula) -> bool:
    """Is mean/base within Z standard errors of ``relative_formula`` (an array over generations)?"""
    target = np.asarray(relative_formula) * result.base
    return bool(np.all(np.abs(result.mean - target) <= Z * result.stderr))


@pytest.fixture(scope="module")
def replace_run():
    return simulate(SimConfig(regime="replace", sampler="labels", trials=TRIALS, **SHAPE))


@pytest.fixture(scope="module")
def accumulate_run():
    return simulate(SimConfig(regime="accumulate", sampler="labels", trials=TRIALS, **SHAPE))


def test_replace_grows_linearly(replace_run):
    n = replace_run.generation
    assert agrees(replace_run, n + 1)
    assert not agrees(replace_run, n), "negative control: slope counted from the wrong generation"
    assert not agrees(replace_run, (n + 1) * (40 - 8 - 1) / (40 - 8)), "negative control: d/(T-d)"


def test_replace_fresh_powerlaw_design_grows_linearly():
    result = simulate(SimConfig(regime="replace", design="fresh", cov="powerlaw", alpha=1.5, trials=TRIALS, **SHAPE))
    assert agrees(result, result.generation + 1)


def test_float32_replace_grows_linearly():
    result = simulate(SimConfig(regime="replace", dtype="float32", trials=TRIALS, **SHAPE))
    assert agrees(result, result.generation + 1)


def test_accumulate_sum_of_inverse_squares(accumulate_run):
    k = accumulate_run.generation + 1
    harmonic2 = np.cumsum(1.0 / np.arange(1, k[-1] + 1) ** 2)
    assert agrees(accumulate_run, harmonic2)
    assert not agrees(accumulate_run, np.cumsum(1.0 / np.arange(1, k[-1] + 1))), "negative control: sum misses its square"


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_perturb_random_masks_add_p_per_generation(p):
    result = simulate(SimConfig(regime="edit", edit_op="perturb", mask="random", edit_fraction=p, trials=TRIALS, **SHAPE))
    p_realised = np.round(p * SHAPE["T"]) / SHAPE["T"]
    np.testing.assert_allclose(result.edit_fraction[1:], p_realised, rtol=0, atol=1e-12)
    assert agrees(result, 1 + result.generation * p_realised)
    assert not agrees(result, 1 + result.generation * 2 * p_realised), "negative control: twice the edit fraction"


def _edit_with_masks(masks, trials=FEW):
    return SimConfig(regime="edit", edit_op="resample", mask="file", masks=masks, trials=trials, **SHAPE)


def test_resample_with_identity_mask_is_replace_draw_for_draw():
    ones = np.ones((SHAPE["generations"], SHAPE["T"]))
    edited = sim.run_trials(_edit_with_masks(ones))[0]
    replaced = sim.run_trials(SimConfig(regime="replace", trials=FEW, sampler="labels", **SHAPE))[0]
    # The same draws through two programs: equal up to the order the compiler sums in (a few ulp).
    np.testing.assert_allclose(edited, replaced, rtol=1e-12, atol=0)
    full_random = SimConfig(regime="edit", edit_op="resample", mask="random", edit_fraction=1.0, trials=FEW, **SHAPE)
    np.testing.assert_allclose(sim.run_trials(full_random)[0], replaced, rtol=1e-12, atol=0)
    half = SimConfig(regime="edit", edit_op="resample", mask="random", edit_fraction=0.5, trials=FEW, **SHAPE)
    assert not np.allclose(sim.run_trials(half)[0], replaced, rtol=1e-6), "negative control: half the labels edited"


@pytest.mark.parametrize("edit_op", ["resample", "perturb"])
def test_zero_mask_keeps_generation_zero(edit_op):
    cfg = dataclasses.replace(_edit_with_masks(np.zeros((SHAPE["generations"], SHAPE["T"]))), edit_op=edit_op)
    errors, fractions = sim.run_trials(cfg)
    assert np.array_equal(errors, np.repeat(errors[:, :1], errors.shape[1], axis=1))
    assert np.all(fractions == 0)


def test_same_seed_is_bit_identical_and_other_seed_differs():
    cfg = SimConfig(regime="edit", edit_op="perturb", mask="disjoint", edit_fraction=0.3, decay=0.5, trials=FEW, **SHAPE)
    first, second = sim.run_trials(cfg), sim.run_trials(cfg)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    other = sim.run_trials(dataclasses.replace(cfg, seed=cfg.seed + 1))
    assert not np.array_equal(first[0], other[0])


def test_disjoint_schedule_edits_each_position_at_most_once():
    cfg = SimConfig(regime="edit", edit_op="perturb", mask="disjoint", edit_fraction=0.4, decay=0.9, trials=FEW, **SHAPE)
    fractions = sim.run_trials(cfg)[1]
    expected = np.minimum(np.round(40 * 0.4 * 0.9 ** np.arange(5)), 40 - np.concatenate([[0], np.cumsum(np.round(40 * 0.4 * 0.9 ** np.arange(4)))]))
    np.testing.assert_allclose(fractions[:, 1:], np.broadcast_to(np.maximum(expected, 0) / 40, (FEW, 5)), atol=1e-12)
    assert np.all(fractions.sum(axis=1) <= 1 + 1e-12)


# --- a plain NumPy loop fed the same noise ------------------------------------------------------


def _numpy_reference(cfg: SimConfig, trial: int) -> np.ndarray:
    """Errors of one trial by an independent NumPy implementation (lstsq fits, argsort ranks),
    fed the simulator's random draws (same keys, same jax.random calls)."""
    with jax.enable_x64(True):
        params = sim.make_params(cfg)
        key = sim.trial_keys(cfg.seed, trial, 1)[0]
        w_star, sqrt_eig = np.asarray(params.w_star), np.asarray(params.sqrt_eig)
        T, d = cfg.T, cfg.d

    def draws(n):
        with jax.enable_x64(True):
            kd, kn, km, kp = generation_keys(key, n)
            X = np.asarray(jax.random.normal(kd, (T, d), dtype=np.float64)) * sqrt_eig
            E = cfg.sigma * np.asarray(jax.random.normal(kn, (T,), dtype=np.float64))
            u_mask = np.asarray(jax.random.bits(km, (T,), np.uint32))  # mask keys: smallest k win
            size = (n + 1) * T  # the subsample's Floyd draws r_i uniform on {0, ..., size - T + i}
            r_pool = np.asarray(uniform_below(kp, size - T + 1 + np.arange(T)))
        return X, E, u_mask, r_pool

    def fit(X, Y):
        return np.linalg.lstsq(X, Y, rcond=None)[0]

    def error(w):
        return float(np.sum(sqrt_eig**2 * (w - w_star) ** 2))

    X, E, _, _ = draws(0)
    Y = X @ w_star + E
    w = fit(X, Y)
    pool_X, pool_Y, edited = [X], [Y], np.zeros(T, bool)
    errors = [error(w)]
    for n in range(1, cfg.generations + 1):
        Xn, E, u_mask, r_pool = draws(n)
        if cfg.regime == "edit":
            Xn = X
            proposal = Xn @ w + E if cfg.edit_op == "resample" else Y + E
            if cfg.mask == "random":
                m = np.argsort(np.argsort(u_mask, kind="stable")) < np.round(cfg.edit_fraction * T)
            else:  # disjoint
                k = np.round(T * cfg.edit_fraction * cfg.decay ** (n - 1))
                free = np.flatnonzero(~edited)
                m = np.zeros(T, bool)
                m[free[np.argsort(u_mask[free], kind="stable")[: int(k)]]] = True
                edited |= m
            Y = np.where(m, proposal, Y)
            w = fit(X, Y)
        else:
            Xn = Xn if cfg.design == "fresh" else X
            Yn = Xn @ w + E
            pool_X.append(Xn)
            pool_Y.append(Yn)
            if cfg.regime == "replace":
                w = fit(Xn, Yn)
            elif cfg.regime == "accumulate":
                w = fit(np.vstack(pool_X), np.concatenate(pool_Y))
            else:  # accumulate-subsample: T of the (n + 1) T pooled points, Floyd's algorithm step by step
                idx = []
                for i, r in enumerate(r_pool):
                    idx.append(n * T + i if r in idx else r)
                w = fit(np.vstack(pool_X)[idx], np.concatenate(pool_Y)[idx])
        errors.append(error(w))
    return np.array(errors)


@pytest.mark.parametrize("overrides", [
    dict(regime="replace"),
    dict(regime="replace", design="fresh", cov="powerlaw"),
    dict(regime="accumulate"),
    dict(regime="accumulate", design="fresh"),
    dict(regime="accumulate-subsample"),
    dict(regime="accumulate-subsample", design="fresh"),
    dict(regime="edit", edit_op="resample", mask="random", edit_fraction=0.25),
    dict(regime="edit", edit_op="perturb", mask="disjoint", edit_fraction=0.3, decay=0.7),
], ids=lambda o: "-".join(str(v) for v in o.values()))
def test_jitted_simulator_matches_numpy_loop(overrides):
    cfg = SimConfig(trials=FEW, sampler="labels", **{**SHAPE, **overrides})
    errors = sim.run_trials(cfg)[0]
    for trial in range(3):
        np.testing.assert_allclose(errors[trial], _numpy_reference(cfg, trial), rtol=1e-9)


# --- resume ------------------------------------------------------------------------------------


class Interrupted(Exception):
    """Stands in for Ctrl-C (pytest treats a real KeyboardInterrupt as the user stopping the tests)."""


def test_interrupted_run_resumes_from_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(sim, "CHUNK_TRIALS", 4)
    cfg = SimConfig(regime="replace", trials=10, **SHAPE)
    uninterrupted = sim.run_trials(cfg)[0]
    checkpoint = tmp_path / "run.partial.npz"

    real_compiled, calls, interrupt = sim.compiled_batch, [], [True]

    def interrupted_after_two_chunks(*args):
        run, seconds = real_compiled(*args)

        def counted(keys, params):
            calls.append(1)
            if interrupt[0] and len(calls) == 3:
                raise Interrupted
            return run(keys, params)

        return counted, seconds

    monkeypatch.setattr(sim, "compiled_batch", interrupted_after_two_chunks)
    with pytest.raises(Interrupted):
        sim.run_trials(cfg, checkpoint=checkpoint)
    assert checkpoint.exists()
    interrupt[0] = False
    calls.clear()
    resumed = sim.run_trials(cfg, checkpoint=checkpoint)[0]
    assert len(calls) == 1, "only the unfinished chunk is recomputed"
    assert np.array_equal(resumed, uninterrupted)
    other = dataclasses.replace(cfg, sigma=2.0)
    calls.clear()
    sim.run_trials(other, checkpoint=checkpoint)
    assert len(calls) == 3, "a checkpoint of another configuration is ignored"

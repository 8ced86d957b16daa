"""Samplers: the accumulate-subsample index draw (Floyd's algorithm, loop-free) is Floyd's loop draw for
draw and has the law of the sort it replaced and of the peer's ``np.random.choice(..., replace=False)``;
its integers (Lemire's multiply-shift with rejection) are exactly uniform; the ``stats`` sampler (Wishart
Gram factor, X^T Y given it) has the law of the ``labels`` sampler. Every law check is seeded, states its
level, and rejects a deliberately wrong sampler."""

from __future__ import annotations

import importlib
import itertools
import math
import os
import subprocess
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from linreg_collapse import SimConfig
from linreg_collapse.design import _wide_product, sample_gram_cholesky, sample_without_replacement, uniform_below
from linreg_collapse.errors import InputError

sim = importlib.import_module("linreg_collapse.simulate")
regimes = importlib.import_module("linreg_collapse.regimes")

LEVEL = 1e-3  # a law check passes when its test does not reject at this level
FULL = pytest.mark.skipif(os.environ.get("LINREG_FULL") != "1", reason="heavy variant: set LINREG_FULL=1")


# --- the Threefry hash behind every draw: unrolled on CPU, the same bits ----------------------------

UNROLL_CHILD = """
import jax, numpy as np
jax.config.update("jax_enable_x64", True)
from linreg_collapse.jax_setup import unroll_threefry_on_cpu
key = jax.random.key(3)
def draws(k):
    return jax.random.bits(k, (3, 333)), jax.random.normal(jax.random.fold_in(k, 7), (1000,))
def hashes_in_a_loop():
    return "while" in jax.jit(draws).lower(key).as_text()
rolled = [np.asarray(x) for x in jax.jit(draws)(key)]
assert hashes_in_a_loop(), "JAX's own CPU rule is a loop"
assert not unroll_threefry_on_cpu({"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=false"}), "classic emitters: kept"
assert hashes_in_a_loop()
assert unroll_threefry_on_cpu({"XLA_FLAGS": ""})
jax.clear_caches()
assert not hashes_in_a_loop(), "the unrolled rule is in use"
unrolled = [np.asarray(x) for x in jax.jit(draws)(key)]
assert all(np.array_equal(a, b) for a, b in zip(rolled, unrolled)), "the same bits and normals"
other = [np.asarray(x) for x in jax.jit(draws)(jax.random.key(4))]
assert not any(np.array_equal(a, b) for a, b in zip(rolled, other)), "negative control: another key"
print("ok")
"""


def test_unrolled_threefry_gives_jax_s_own_draws_bit_for_bit():
    """In a fresh process (the rule is process-wide): JAX's CPU rule hashes in a loop, the unrolled one
    does not (it is not installed under the classic emitters), and both give the same bits and float64
    normals; another key gives others."""
    proc = subprocess.run([sys.executable, "-c", UNROLL_CHILD], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


# --- uniform integers: Lemire's multiply-shift with rejection -----------------------------------------


def test_wide_product_is_the_exact_64_bit_product():
    rng = np.random.default_rng(0)
    a = np.concatenate([[0, 1, 2**32 - 1, 2**32 - 1, 2**16], rng.integers(0, 2**32, 2000)]).astype(np.uint32)
    b = np.concatenate([[0, 2**32 - 1, 1, 2**32 - 1, 2**16], rng.integers(0, 2**32, 2000)]).astype(np.uint32)
    high, low = (np.asarray(x) for x in jax.jit(_wide_product)(a, b))
    exact = [int(x) * int(y) for x, y in zip(a, b)]
    assert high.tolist() == [e >> 32 for e in exact] and low.tolist() == [e & (2**32 - 1) for e in exact]


BIG_SPAN = 3 * 2**29  # 2^32 / s = 8/3: a quarter of the words is rejected, so the redraw loop runs


def big_span_pvalue(r: np.ndarray) -> float:
    """Chi-square of draws on {0..BIG_SPAN-1} against the uniform law, on 36 equiprobable cells
    (r // 2^27, r mod 3): modulo reduction overweights r < 2^30 (3 words each, against 2), multiply-shift
    without rejection overweights r mod 3 in {0, 1} (floor(3 x / 8): 3 words each, against 2)."""
    if r.min() < 0 or r.max() >= BIG_SPAN:
        return 0.0
    return stats.chisquare(np.bincount((r // 2**27) * 3 + r % 3, minlength=36)).pvalue


def test_uniform_below_is_exact_where_modulo_and_plain_multiply_shift_are_biased():
    key, n = jax.random.key(1), 36_000  # 1000 expected per cell
    span = np.full(n, BIG_SPAN, np.uint32)
    assert big_span_pvalue(np.asarray(uniform_below(key, span)).astype(np.int64)) > LEVEL
    words = jax.random.bits(key, (n,), jnp.uint32)
    assert big_span_pvalue(np.asarray(words % span).astype(np.int64)) < 1e-9, "negative control: modulo"
    plain = np.asarray(_wide_product(words, jnp.asarray(span))[0]).astype(np.int64)
    assert big_span_pvalue(plain) < 1e-9, "negative control: no rejection"


def small_spans_pvalue(r: np.ndarray, spans: np.ndarray) -> float:
    """Chi-square of draws r_i on {0..spans_i - 1} against the uniform law, over every (span, value) cell;
    0 if any draw is out of its range."""
    if np.any((r < 0) | (r >= spans)):
        return 0.0
    counts = np.concatenate([np.bincount(r[spans == s], minlength=s) for s in np.unique(spans)])
    expected = np.concatenate([np.full(s, np.sum(spans == s) / s) for s in np.unique(spans)])
    return stats.chi2.sf(np.sum((counts - expected) ** 2 / expected), counts.size - np.unique(spans).size)


def test_uniform_below_small_spans_and_off_by_one_controls():
    spans = np.tile(np.arange(1, 8), 3000)  # 3000 draws of each span 1..7
    key = jax.random.key(2)
    assert small_spans_pvalue(np.asarray(uniform_below(key, spans)), spans) > LEVEL
    assert small_spans_pvalue(np.asarray(uniform_below(key, spans + 1)), spans) == 0.0, "negative control"
    wide = np.maximum(spans - 1, 1)  # span 1 kept; the top value of every other span never drawn
    assert small_spans_pvalue(np.asarray(uniform_below(key, wide)), spans) < 1e-9, "negative control"


# --- index samplers: the new one, the algorithm it replaced, the peer's rule, a wrong one --------------


POOL = 128  # padded pool of the reference below: at least every population drawn from in this file


def floyd_subset(key, population: int, k: int):
    """The sampler under test on a fresh table (stamp 1)."""
    return sample_without_replacement(key, population, k, jnp.zeros(population, jnp.int32), 1)[0]


def argsort_subset(key, population, k):
    """The previous algorithm (reference): the k smallest of uniforms on the filled prefix of a padded pool."""
    u = jnp.where(jnp.arange(POOL) < population, jax.random.uniform(key, (POOL,)), 2.0)
    return jnp.argsort(u)[:k]


def off_by_one_floyd_subsets(population: int, k: int, draws: int, seed: int = 0) -> np.ndarray:
    """Negative control: Floyd's loop with r_i on {0..j_i - 1}: distinct indices, wrong law."""
    rng = np.random.default_rng(seed)
    out = np.empty((draws, k), int)
    for row in out:
        picks = []
        for i, t in enumerate(rng.integers(0, population - k + np.arange(k))):
            picks.append(population - k + i if t in picks else t)
        row[:] = picks
    return out


def draw_subsets(sampler, population: int, k: int, draws: int, seed: int = 0) -> np.ndarray:
    """[draws, k] index sets from a JAX sampler, vmapped over keys."""
    keys = jax.random.split(jax.random.key(seed), draws)
    return np.asarray(jax.jit(jax.vmap(lambda key: sampler(key, population, k)))(keys))


def peer_subsets(population: int, k: int, draws: int, seed: int = 0) -> np.ndarray:
    """The peer's rule: ``RandomState.choice(population, k, replace=False)``, one call per draw."""
    rng = np.random.RandomState(seed)
    return np.stack([rng.choice(population, size=k, replace=False) for _ in range(draws)])


def subset_uniformity_pvalue(subsets: np.ndarray, population: int) -> float:
    """Chi-square goodness of fit of the drawn k-subsets to the uniform law on all C(population, k)."""
    k = subsets.shape[1]
    index = {s: i for i, s in enumerate(itertools.combinations(range(population), k))}
    counts = np.bincount([index[tuple(sorted(s))] for s in subsets.tolist()], minlength=len(index))
    return stats.chisquare(counts).pvalue


@pytest.mark.parametrize("sampler", [floyd_subset, argsort_subset, "peer"],
                         ids=["floyd", "argsort-reference", "peer-choice"])
def test_every_k_subset_is_equally_likely(sampler):
    population, k, draws = 8, 4, 14_000  # 70 subsets, 200 draws each
    subsets = peer_subsets(population, k, draws) if sampler == "peer" else draw_subsets(sampler, population, k, draws)
    assert subset_uniformity_pvalue(subsets, population) > LEVEL


def test_off_by_one_floyd_is_rejected():
    subsets = off_by_one_floyd_subsets(8, 4, 14_000)
    assert np.all(np.sort(subsets, axis=1)[:, 1:] > np.sort(subsets, axis=1)[:, :-1]), "distinct, yet"
    assert subset_uniformity_pvalue(subsets, 8) < 1e-9


def floyd_loop(r: list[int], population: int) -> tuple[list[int], int]:
    """Floyd's sequential loop on given draws r_i: (its picks in step order, the longest chain of steps
    whose draw is an earlier step's collision pick)."""
    k, picks, chain = len(r), [], []
    for i, ri in enumerate(r):
        earlier = ri - (population - k)
        picks.append(population - k + i if ri in picks else ri)
        chain.append(1 + chain[earlier] if 0 <= earlier < i and ri not in r[:i] else 0)
    return picks, max(chain)


def test_loop_free_floyd_is_floyds_loop_draw_for_draw():
    """Three draws per trial on one table (stamps 1, 2, 3, the regime's use), populations 120, 180, 240 of
    k = 60: the picks are the sequential loop's on the same r_i, chains included. Negative control: the
    same table reused with a stamp that does not increase mistakes stale codes for repeats."""
    k, populations, trials = 60, (120, 180, 240), 300
    keys = jax.random.split(jax.random.key(5), (len(populations), trials))

    @jax.jit
    def draws(keys, stamps):
        def one_trial(keys):
            def step(seen, call):
                key, population, stamp = call
                picks, seen = sample_without_replacement(key, population, k, seen, stamp)
                return seen, (picks, uniform_below(key, population - k + jnp.arange(1, k + 1)))
            return jax.lax.scan(step, jnp.zeros(max(populations), jnp.int32),
                                (keys, jnp.asarray(populations), stamps))[1]
        return jax.vmap(one_trial, in_axes=1, out_axes=1)(keys)

    picks, r = (np.asarray(x) for x in draws(keys, jnp.arange(1, 4)))
    longest = 0
    for call, population in enumerate(populations):
        for trial in range(trials):
            expected, chain = floyd_loop(r[call, trial].tolist(), population)
            assert picks[call, trial].tolist() == expected, (population, trial)
            longest = max(longest, chain)
    assert longest >= 3, "the draws exercise chains of collisions"
    stale = np.asarray(draws(keys, jnp.ones(3, jnp.int32))[0])
    assert np.array_equal(stale[0], picks[0]) and not np.array_equal(stale[1:], picks[1:])


def test_realistic_pool_inclusion_and_block_counts():
    """Generation n = 5 of T = 100: 100 of 600 slots. Indices distinct and in range; each slot included
    with probability 1/6 (chi-square on inclusion counts, scaled by 1 - 1/6 for the draws' negative
    correlation); the newest block's count is hypergeometric and has the same law as the peer's rule
    (chi-square homogeneity)."""
    population, k, draws = 600, 100, 3000
    subsets = draw_subsets(floyd_subset, population, k, draws)
    ordered = np.sort(subsets, axis=1)
    assert ordered[:, 0].min() >= 0 and ordered[:, -1].max() < population
    assert np.all(ordered[:, 1:] > ordered[:, :-1])
    p = k / population
    inclusion = np.bincount(subsets.ravel(), minlength=population)
    chi2 = np.sum((inclusion - draws * p) ** 2) / (draws * p * (1 - p))
    assert stats.chi2.sf(chi2, population - 1) > LEVEL

    def newest_block_counts(s):
        return np.sum(s >= population - k, axis=1)

    bins = np.arange(8, 26)  # counts outside are pooled into the end bins
    pmf = stats.hypergeom(population, k, k).pmf(bins)
    pmf[0] += stats.hypergeom(population, k, k).cdf(bins[0] - 1)
    pmf[-1] += stats.hypergeom(population, k, k).sf(bins[-1])
    ours = np.bincount(np.clip(newest_block_counts(subsets), bins[0], bins[-1]) - bins[0], minlength=bins.size)
    assert stats.chisquare(ours, draws * pmf).pvalue > LEVEL
    peer = newest_block_counts(peer_subsets(population, k, draws))
    theirs = np.bincount(np.clip(peer, bins[0], bins[-1]) - bins[0], minlength=bins.size)
    keep = (ours + theirs) > 0
    assert stats.chi2_contingency(np.stack([ours[keep], theirs[keep]])).pvalue > LEVEL
    older = np.sum(subsets < k, axis=1)  # negative control: the oldest block is not the newest's law shifted
    shifted = np.bincount(np.clip(older + 3, bins[0], bins[-1]) - bins[0], minlength=bins.size)
    assert stats.chisquare(shifted, draws * pmf).pvalue < 1e-9


# --- errors: accumulate-subsample with the new index draw, the old one and the peer's rule -------------


SUB = dict(regime="accumulate-subsample", T=20, d=4, generations=4, sigma=1.0, seed=7)
SUB_TRIALS = 2000


def same_law(a: np.ndarray, b: np.ndarray) -> bool:
    """Two samples not told apart at LEVEL by Kolmogorov-Smirnov nor by k-sample Anderson-Darling
    (its statistic against the 0.1% critical value)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "p-value floored": only the statistic is used
        ad = stats.anderson_ksamp([a, b])
    return bool(stats.ks_2samp(a, b).pvalue > LEVEL and ad.statistic < ad.critical_values[-1])


def peer_rule_errors(trials: int, seed: int = 3, newest_only: bool = False) -> np.ndarray:
    """Last-generation errors of accumulate-subsample written as the peer does: a fixed design, the pool
    concatenated, ``RandomState.choice(replace=False)`` and a pseudo-inverse fit. ``newest_only``: the
    negative control, a rule that ignores the pool and keeps the newest T points (that is, replace)."""
    T, d, G, sigma = SUB["T"], SUB["d"], SUB["generations"], SUB["sigma"]
    rng = np.random.RandomState(seed)
    out = np.empty(trials)
    for trial in range(trials):
        w_star = rng.randn(d) / np.sqrt(d)
        X = rng.randn(T, d)
        pool_X, pool_Y = X, X @ w_star + sigma * rng.randn(T)
        w = np.linalg.pinv(X) @ pool_Y
        for _ in range(G):
            pool_X = np.concatenate([pool_X, X])
            pool_Y = np.concatenate([pool_Y, X @ w + sigma * rng.randn(T)])
            idx = rng.choice(len(pool_Y), size=T, replace=False)
            idx = len(pool_Y) - T + np.arange(T) if newest_only else idx
            w = np.linalg.pinv(pool_X[idx]) @ pool_Y[idx]
        out[trial] = np.sum((w - w_star) ** 2)
    return out


def subsample_errors(monkeypatch, index_sampler) -> np.ndarray:
    """Per-trial last-generation errors of the simulator with ``index_sampler`` (compiled afresh, uncached)."""
    with monkeypatch.context() as patch:
        patch.setattr(regimes, "sample_without_replacement",
                      lambda key, population, k, seen, stamp: (index_sampler(key, population, k), seen))
        patch.setattr(sim, "compiled_runner", sim.compiled_runner.__wrapped__)
        return sim.run_trials(SimConfig(trials=SUB_TRIALS, **SUB))[0][:, -1]


def test_subsample_errors_have_the_law_of_the_sort_and_of_the_peer(monkeypatch):
    ours = sim.run_trials(SimConfig(trials=SUB_TRIALS, **SUB))[0][:, -1]
    assert same_law(ours, subsample_errors(monkeypatch, argsort_subset))
    assert same_law(ours, peer_rule_errors(SUB_TRIALS))
    assert not same_law(ours, peer_rule_errors(SUB_TRIALS, newest_only=True)), "negative control: no pool"


# --- the stats sampler against the labels sampler --------------------------------------------------


SHAPE = dict(T=40, d=8, generations=5, sigma=0.7, seed=11)  # test_simulate's shape: shares its compilations
TRIALS = 3000


def errors(**kw) -> np.ndarray:
    return sim.run_trials(SimConfig(trials=TRIALS, **{**SHAPE, **kw}))[0]


def law_checks(by_stats: np.ndarray, by_labels: np.ndarray) -> None:
    """Generations 0, 1 and the last: same law (KS, Anderson-Darling) and variances within 4 standard
    errors of the log of their ratio (var of log s^2 ~ (excess kurtosis + 2) / n)."""
    for n in (0, 1, SHAPE["generations"]):
        assert same_law(by_stats[:, n], by_labels[:, n]), n
        log_ratio = np.log(by_stats[:, n].var() / by_labels[:, n].var())
        kurt = stats.kurtosis(np.concatenate([by_stats[:, n], by_labels[:, n]]))
        assert abs(log_ratio) <= 4 * math.sqrt((kurt + 2) * 2 / TRIALS), n


def harmonic(n, power):
    """sum_{k=1}^{n+1} k^-power for each n of the array ``n`` = 0, 1, ..."""
    return np.cumsum(1 / np.arange(1, n[-1] + 2) ** power)


@pytest.mark.parametrize("regime, relative, wrong", [
    ("replace", lambda n: n + 1, lambda n: n),
    ("accumulate", lambda n: harmonic(n, 2), lambda n: harmonic(n, 1)),
], ids=["replace", "accumulate"])
def test_stats_sampler_on_a_fixed_design_matches_theory_and_labels(regime, relative, wrong):
    """Mean error per generation within 4 standard errors of theory (and a wrong formula rejected);
    the same law as the labels sampler."""
    by_stats = errors(regime=regime, sampler="stats", seed=12)
    mean, se = by_stats.mean(0), by_stats.std(0, ddof=1) / math.sqrt(TRIALS)
    base = SHAPE["sigma"] ** 2 * SHAPE["d"] / (SHAPE["T"] - SHAPE["d"] - 1)
    n = np.arange(SHAPE["generations"] + 1)
    assert np.all(np.abs(mean - base * relative(n)) <= 4 * se)
    assert not np.all(np.abs(mean - base * wrong(n)) <= 4 * se), "negative control: a wrong formula"
    law_checks(by_stats, errors(regime=regime, sampler="labels"))


@pytest.mark.parametrize("kw", [
    dict(regime="replace", design="fresh", cov="powerlaw", alpha=1.5),
    pytest.param(dict(regime="accumulate", design="fresh"), marks=FULL),
], ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_stats_sampler_on_fresh_designs_has_the_law_of_the_labels_sampler(kw):
    """Wishart (Bartlett) designs: the same law as drawn designs; a noise scale off by 15% is rejected."""
    by_labels = errors(sampler="labels", seed=12, **kw)
    law_checks(errors(sampler="stats", **kw), by_labels)
    wrong = errors(sampler="stats", **{**kw, "sigma": SHAPE["sigma"] * 1.15})
    assert not same_law(wrong[:, -1], by_labels[:, -1]), "negative control: noise scale off by 15%"


def test_bartlett_factor_has_the_wishart_moments():
    """L L^T from :func:`sample_gram_cholesky`: mean T Sigma and Var((X^T X)_ij) = T (S_ij^2 + S_ii S_jj),
    each entry within 4 standard errors; L lower triangular with a positive diagonal; d = 1 works."""
    T, eig = 7, np.array([2.0, 1.0, 0.5])
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(4), 10_000)
        L = np.asarray(jax.vmap(lambda k: sample_gram_cholesky(k, jnp.sqrt(eig), T))(keys))
        one = np.asarray(sample_gram_cholesky(keys[0], jnp.ones(1), T))
    assert np.all(np.triu(L, 1) == 0) and np.all(np.diagonal(L, axis1=1, axis2=2) > 0)
    assert one.shape == (1, 1) and one[0, 0] > 0
    gram = L @ np.swapaxes(L, 1, 2)
    mean, var = T * np.diag(eig), T * (np.diag(eig) ** 2 + np.outer(eig, eig))
    se = np.sqrt(var / len(keys))
    assert np.all(np.abs(gram.mean(0) - mean) <= 4 * se)
    assert np.all(np.abs(gram.var(0) / var - 1) <= 0.09)  # about 3.5 standard errors at 10,000 draws
    assert not np.all(np.abs(gram.mean(0) - (T + 1) * np.diag(eig)) <= 4 * se), "negative control: T + 1 dof"


def test_sampler_choice_is_validated_and_recorded():
    assert SimConfig(regime="replace").effective_sampler == "stats"
    assert SimConfig(regime="edit").effective_sampler == "labels"
    assert SimConfig(regime="accumulate", sampler="labels").to_dict()["sampler"] == "labels"
    assert SimConfig(regime="accumulate").to_dict()["sampler"] == "stats"
    for regime in ("edit", "accumulate-subsample"):
        with pytest.raises(InputError, match="--sampler stats"):
            SimConfig(regime=regime, sampler="stats")
    with pytest.raises(InputError, match="sampler"):
        SimConfig(sampler="wishart")

"""The law of the random and disjoint mask schedules (issue 15): exactly round(p T) positions, uniformly
without replacement; disjoint draws only never-edited positions, uniformly. The O(T) sampler and the
previous argsort sampler (kept here as the reference) both pass the same checks, within 4 standard errors
of theory; a biased sampler fails them (negative control). The interpolation search for the k-th smallest
key selects bit for bit what the previous 32-pass bitwise search and a sort select, ties and edge cases
included (the selection of the wrong rank is rejected). Seeded; about 3 s.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from linreg_collapse.masks import (INTERPOLATION_PROBES, KEY_BITS, LARGEST_KEY, disjoint_schedule, kth_smallest_key,
                                   random_schedule, select_smallest, select_uniform)

T, DRAWS = 24, 20000


class MaskParams(NamedTuple):
    edit_fraction: jax.Array
    decay: jax.Array


def reference_select(key, available, k):
    """The previous sampler: rank uniforms (unavailable positions last) with two argsorts, keep ranks < k."""
    u = jnp.where(available, jax.random.uniform(key, available.shape), 2.0)
    return (jnp.argsort(jnp.argsort(u)) < k) & available


def first_available(key, available, k):
    """A wrong sampler (negative control): the k lowest available positions, plus one random flip."""
    chosen = available & (jnp.cumsum(available) <= k)
    return chosen ^ (jnp.arange(available.shape[0]) == jax.random.randint(key, (), 0, available.shape[0]))


@functools.lru_cache(maxsize=None)
def batched(select):
    return jax.jit(jax.vmap(select, in_axes=(0, None, None)))


def draws(select, available, k, seed=0):
    keys = jax.random.split(jax.random.key(seed), DRAWS)
    return np.asarray(batched(select)(keys, available, jnp.int32(k)))


def law_z_scores(masks: np.ndarray, available: np.ndarray, k: int) -> np.ndarray:
    """z-scores of (a) each count against min(k, #available) exactly (inf if any differs), (b) each
    position's inclusion frequency against k/#available (0 for unavailable positions), (c) the mean and
    variance of the count in the first half of the available positions against the hypergeometric law."""
    n = int(available.sum())
    take = min(k, n)
    counts = masks.sum(axis=1)
    exact = 0.0 if np.all(counts == take) and not masks[:, ~available].any() else np.inf
    p = take / n
    freq = masks[:, available].mean(axis=0)
    z_freq = (freq - p) / np.sqrt(p * (1 - p) / len(masks) + 1e-300)
    half = np.flatnonzero(available)[: n // 2]
    sub = masks[:, half].sum(axis=1)
    m = len(half)
    mean = take * m / n
    var = take * (m / n) * (1 - m / n) * (n - take) / max(n - 1, 1)
    z_mean = (sub.mean() - mean) / np.sqrt(var / len(masks) + 1e-300)
    # Var of the sample variance ~ (mu4 - var^2) / N; mu4 estimated from the sample.
    mu4 = np.mean((sub - sub.mean()) ** 4)
    z_var = (sub.var(ddof=1) - var) / np.sqrt(max(mu4 - var**2, 1e-12) / len(masks))
    return np.concatenate([[exact, z_mean, z_var], z_freq])


CASES = [(np.ones(T, bool), 7), (np.arange(T) % 3 != 0, 5), (np.arange(T) < 10, 10), (np.arange(T) < 6, 9)]


@pytest.mark.parametrize("select", [select_uniform, reference_select], ids=["select_uniform", "reference"])
@pytest.mark.parametrize("available,k", CASES, ids=["all", "two-thirds", "all-of-available", "k>available"])
def test_exact_count_and_uniform_inclusion(select, available, k):
    z = law_z_scores(draws(select, jnp.asarray(available), k), available, k)
    assert np.max(np.abs(z)) < 4.0, z


def test_biased_sampler_is_rejected():
    available = np.ones(T, bool)
    z = law_z_scores(draws(first_available, jnp.asarray(available), 7), available, 7)
    assert np.max(np.abs(z)) > 4.0


def test_schedules_random_and_disjoint():
    """random: round(p T) each generation; disjoint: round(T p eta^(n-1)) never-edited positions, each
    position edited at most once, and generation 2 uniform over the positions generation 1 left."""
    params = MaskParams(jnp.asarray(0.3), jnp.asarray(0.5))
    residual = jnp.zeros(T)
    rand = random_schedule()
    m, _ = rand.sample(rand.init(T), jax.random.key(1), 1, residual, params)
    assert int(m.sum()) == round(0.3 * T)

    disjoint = disjoint_schedule()

    def two_generations(key):
        k1, k2 = jax.random.split(key)
        m1, edited = disjoint.sample(disjoint.init(T), k1, 1, residual, params)
        m2, _ = disjoint.sample(edited, k2, 2, residual, params)
        return m1, m2

    m1, m2 = map(np.asarray, jax.jit(jax.vmap(two_generations))(jax.random.split(jax.random.key(2), DRAWS)))
    k1, k2 = round(T * 0.3), round(T * 0.3 * 0.5)
    assert np.all(m1.sum(1) == k1) and np.all(m2.sum(1) == k2) and not np.any(m1.astype(bool) & m2.astype(bool))
    # Marginally each position is in generation 2 with probability (1 - k1/T) k2/(T - k1) = k2/T.
    freq = m2.mean(axis=0)
    z = (freq - k2 / T) / np.sqrt(k2 / T * (1 - k2 / T) / DRAWS)
    assert np.max(np.abs(z)) < 4.0, z


def bitwise_select(keys, available, k):
    """The previous selection (reference): the k-th smallest key v by a 32-pass bitwise binary search,
    then the keys below v and the first ties at v in position order."""
    k = jnp.asarray(k).astype(jnp.int32)

    def refine(b, v):
        bit = jnp.left_shift(jnp.uint32(1), (KEY_BITS - 1 - b).astype(jnp.uint32))
        return jnp.where(jnp.sum(keys <= (v | (bit - 1)), dtype=jnp.int32) >= k, v, v | bit)

    v = jax.lax.fori_loop(0, KEY_BITS, refine, jnp.uint32(0))
    below = available & (keys < v)
    ties = available & (keys == v)
    return below | (ties & (jnp.cumsum(ties, dtype=jnp.int32) <= k - jnp.sum(below, dtype=jnp.int32)))


def sorted_select(keys, available, k):
    """Reference by sorting: rank positions by (key, position), unavailable last; keep ranks < k."""
    order = np.lexsort((np.arange(len(keys)), keys, ~available))
    chosen = np.zeros(len(keys), bool)
    chosen[order[: min(k, int(available.sum()))]] = True
    return chosen


def key_batches(seed, draws, T):
    """Keys with many ties (a range of 8, or 2 values), full-range keys, clustered keys (a 2^-20 slice of
    the range: interpolation's worst case), and keys at the extremes 0 and LARGEST_KEY."""
    rng = np.random.default_rng(seed)
    full = rng.integers(0, 2**32, (draws, T), dtype=np.uint64)
    return {
        "range8": rng.integers(0, 8, (draws, T)),
        "two-values": rng.choice([0, LARGEST_KEY], (draws, T)),
        "full-range": full,
        "clustered": 2**31 + (full >> 20),
        "near-largest": LARGEST_KEY - rng.integers(0, 3, (draws, T)),
    }


AVAILABILITY = {"all": np.ones(24, bool), "every-third": np.arange(24) % 3 == 0, "none": np.zeros(24, bool),
                "first-five": np.arange(24) < 5}


def test_selection_is_bit_identical_to_the_bitwise_search_and_a_sort():
    """Every key batch x availability x k in {0, 1, 3, #available, #available + 2}: 64 draws each under
    vmap (each trial's search stops when it converges), compared bit for bit with both references. The same
    checker rejects the selection of the wrong rank (k + 1; negative control)."""
    run, reference = batched(select_smallest), batched(bitwise_select)
    mismatches = {"k": 0, "k + 1": 0}
    for name, batch in key_batches(0, 64, 24).items():
        for available in AVAILABILITY.values():
            keys = jnp.asarray(np.where(available, batch, LARGEST_KEY).astype(np.uint32))
            for k in sorted({0, 1, 3, int(available.sum()), int(available.sum()) + 2}):
                previous = np.asarray(reference(keys, jnp.asarray(available), jnp.int32(k)))
                by_sort = np.stack([sorted_select(row, available, k) for row in np.asarray(keys)])
                assert np.array_equal(previous, by_sort), (name, k)
                for rank, shift in (("k", 0), ("k + 1", 1)):
                    got = np.asarray(run(keys, jnp.asarray(available), jnp.int32(k + shift)))
                    mismatches[rank] += int(np.sum(np.any(got != by_sort, axis=1)))
    assert mismatches["k"] == 0 and mismatches["k + 1"] > 0, mismatches


def test_uniform_keys_take_few_probes_and_the_worst_case_is_bounded():
    """T = 1000, k = 100, 128 draws under vmap: v is the k-th smallest key; uniform keys take at most 5
    probes on average, clustered keys (2^-20 of the range) finish within the stated bound."""
    T, k = 1000, 100
    keys = np.random.default_rng(3).integers(0, 2**32, (128, T), dtype=np.uint64)
    search = jax.jit(jax.vmap(kth_smallest_key, in_axes=(0, None, None)))
    probes = {}
    for name, batch in (("uniform", keys), ("clustered", 2**31 + (keys >> 20))):
        v, probes[name] = map(np.asarray, search(jnp.asarray(batch, jnp.uint32), jnp.ones(T, bool), jnp.int32(k)))
        assert np.array_equal(v, np.sort(batch, axis=1)[:, k - 1]), name
    assert np.mean(probes["uniform"]) <= 5 and np.max(probes["clustered"]) <= INTERPOLATION_PROBES + KEY_BITS, probes

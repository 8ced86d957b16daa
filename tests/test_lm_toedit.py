"""Vectorised ToEdit against the official script's per-token logic, windows, the byte prior's UTF-8 rule,
strategy semantics and validation."""

import jax
import numpy as np
import pytest

from linreg_collapse.errors import InputError
from linreg_collapse.lm.data import VOCAB_SIZE
from linreg_collapse.lm.model import ModelConfig, Transformer
from linreg_collapse.lm.scoring import BytePrior, edit_documents, score_documents, windows
from linreg_collapse.lm.toedit import (
    STRATEGIES, Scores, document_uniforms, edit_reference, edit_tokens, make_strategy,
)

MICRO = ModelConfig(VOCAB_SIZE, block_size=16, d_model=16, n_layers=1, n_heads=2)
VOCAB = 50


class PlantedPrior:
    """A prior with synthetic scores (no model): per window position a random logit vector over 50 tokens,
    seeded by the window's tokens, whose observed token gets +12, 0 or -12 (p near 1, middling, near 0).
    Tokens >= 40 are not editable."""

    context, batch_size, vocab_size = 12, 3, VOCAB

    @staticmethod
    def editable(tokens):
        return tokens < 40

    def score_windows(self, batch, top_k):
        out = []
        for window in batch:
            rng = np.random.default_rng([7, *window.tolist()])
            logits = rng.normal(size=(len(window) - 1, VOCAB))
            logits[np.arange(len(window) - 1), window[1:]] += rng.choice([12.0, 0.0, -12.0], len(window) - 1)
            log_probs = (logits - np.log(np.exp(logits).sum(-1, keepdims=True))).astype(np.float32)
            order = np.argsort(-log_probs, axis=-1)[:, :top_k].astype(np.int32)
            target = log_probs[np.arange(len(order)), window[1:]]
            out.append(Scores(np.take_along_axis(log_probs, order, -1), order, target))
        return out


@pytest.fixture(scope="module")
def planted_corpus():
    rng = np.random.default_rng(0)
    return [rng.integers(0, VOCAB, int(n)).astype(np.int32) for n in rng.integers(1, 40, 13)]


@pytest.fixture(scope="module")
def micro_model():
    return Transformer(MICRO, jax.random.PRNGKey(0))


def ulps(x, steps):
    """float32 values ``steps`` float32 steps from x (negative: below)."""
    x = np.float32(x)
    for _ in range(abs(steps)):
        x = np.nextafter(x, np.float32(np.inf if steps > 0 else -np.inf))
    return x


def planted_documents(strategy, n_docs=40, seed=0):
    """Documents over a vocabulary of 50 with synthetic float32 scores. The observed token's log-prob is
    drawn from: 4 float32 steps either side of each threshold's exact float32 boundary (the boundary
    included), NaN, and uniform values in [-12, 0]. Half the time the observed token is one of the
    top-k candidates (at a random place, with that same log-prob), else it is outside them."""
    rng = np.random.default_rng(seed)
    near = [ulps(b, s) for b in (strategy.revise_from, strategy.keep_from) if b is not None for s in range(-4, 5)]
    docs = []
    for _ in range(n_docs):
        n = int(rng.integers(2, 60))
        tokens = rng.integers(0, VOCAB, n).astype(np.int32)
        top_ids = np.stack([rng.choice(VOCAB, strategy.top_k, replace=False) for _ in range(n)]).astype(np.int32)
        top_lp = np.sort(rng.uniform(-12, -0.5, (n, strategy.top_k)), axis=1)[:, ::-1].astype(np.float32)
        kind = rng.random(n)
        target = np.where(kind < 0.6, rng.choice(np.asarray(near, np.float32), n),
                          np.where(kind < 0.7, np.float32(np.nan), rng.uniform(-12, 0, n))).astype(np.float32)
        for t in range(n):
            if rng.random() < 0.5:
                slot = rng.integers(strategy.top_k)
                tokens[t], top_lp[t, slot] = top_ids[t, slot], target[t]
            else:
                while tokens[t] in top_ids[t]:
                    tokens[t] = rng.integers(VOCAB)
        docs.append((tokens, Scores(top_lp, top_ids, target)))
    return docs


def vectorised(docs, strategy, seed):
    """edit_tokens on all documents padded into one (40, 64) batch (first token of each document not
    editable); one shape, so one compilation per kind of strategy."""
    width, rows = 64, 40

    def pad(arrays, fill=0):
        arrays = [np.pad(x, [(0, width - len(x))] + [(0, 0)] * (x.ndim - 1), constant_values=fill) for x in arrays]
        return np.stack(arrays + [np.full_like(arrays[0], fill)] * (rows - len(arrays)))

    scores = Scores(pad([s.top_log_probs for _, s in docs], -1.0), pad([s.top_ids for _, s in docs]),
                    pad([s.target_log_probs for _, s in docs], -30.0))  # padding would be dropped if counted
    tokens = pad([t for t, _ in docs])
    valid = pad([np.ones(len(t), bool) for t, _ in docs])
    editable = valid & (np.arange(width) > 0)
    uniforms = pad([document_uniforms(seed, i, len(t)) for i, (t, _) in enumerate(docs)])
    packed, n_kept, revised, _, dropped = (np.asarray(a) for a in edit_tokens(
        scores, tokens, valid, editable, uniforms, strategy))
    return [row[:n].tolist() for row, n in zip(packed[: len(docs)], n_kept)], revised, dropped


def oracle(docs, strategy, seed):
    return [edit_reference(s, t, np.arange(len(t)) > 0, document_uniforms(seed, i, len(t)), strategy)
            for i, (t, s) in enumerate(docs)]


@pytest.mark.parametrize("strategy", [
    *STRATEGIES.values(),
    make_strategy("low_drop_up_revise", up_threshold=0.6, low_threshold=0.2, beta=0.7),
    make_strategy("up_revise", up_threshold=0.001),  # many revised tokens outside the top-k
])
def test_vectorised_edit_equals_the_official_logic_at_the_thresholds(strategy):
    """Exact agreement with the float64 per-token oracle on planted values at and around each threshold;
    negative control: shifting a boundary by one float32 step (`>` for `>=`, or float32 exp) flips
    planted positions, so the comparison is sensitive to it."""
    docs = planted_documents(strategy)
    rows, revised, dropped = vectorised(docs, strategy, seed=7)
    assert rows == oracle(docs, strategy, seed=7)
    target = np.concatenate([s.target_log_probs[1:] for _, s in docs])
    n_revised, n_dropped = revised.sum(), dropped.sum()
    if strategy.up_threshold is not None:
        assert n_revised == np.sum(np.exp(target.astype(np.float64)) > strategy.up_threshold) > 0
        assert np.sum(target == np.float32(strategy.revise_from)) > 0  # `>` instead of `>=` would differ here
        if strategy.up_threshold == 0.99:  # a float32 comparison (the old bug) decides some of them differently
            assert np.sum(np.exp(target) > np.float32(strategy.up_threshold)) != n_revised
    if strategy.low_threshold is not None:
        p = np.exp(target.astype(np.float64))
        expected = ~(p >= strategy.low_threshold) if strategy.drops_nan else (p < strategy.low_threshold)
        assert n_dropped == np.sum(expected & ~(p > (strategy.up_threshold or 1.0))) > 0
        assert np.sum(target == np.float32(strategy.keep_from)) > 0
    assert not revised[:, 0].any() and not dropped[:, 0].any()


def test_nan_scores_are_dropped_by_filtering_and_kept_by_low_drop():
    tokens = np.array([5, 6, 7], np.int32)
    scores = Scores(np.full((3, 8), -1.0, np.float32), np.tile(np.arange(8, 16, dtype=np.int32), (3, 1)),
                    np.array([np.nan, np.nan, -0.5], np.float32))
    for name, expected in (("filtering", [5, 7]), ("low_drop_up_revise", [5, 6, 7])):
        strategy = STRATEGIES[name]
        assert vectorised([(tokens, scores)], strategy, 0)[0] == [expected]
        assert oracle([(tokens, scores)], strategy, 0) == [expected]


def test_the_seed_changes_the_draws_and_only_the_seed(planted_corpus):
    strategy = make_strategy("up_revise", up_threshold=0.5, beta=50.0)
    first = edit_documents(PlantedPrior(), planted_corpus, strategy, seed=1)
    again = edit_documents(PlantedPrior(), planted_corpus, strategy, seed=1, edit_batch=4)
    other = edit_documents(PlantedPrior(), planted_corpus, strategy, seed=2)
    same = lambda a, b: all(np.array_equal(x, y) for x, y in zip(a.documents, b.documents))  # noqa: E731
    assert same(first, again) and not same(first, other)


@pytest.mark.parametrize("name", STRATEGIES)
def test_edit_documents_equals_the_oracle_and_counts_real_tokens(planted_corpus, name):
    """Documents of different lengths (some longer than the context) in padded batches: edits equal the
    oracle's, and the counts are the oracle's (padding and first tokens never counted)."""
    strategy = STRATEGIES[name]
    docs = planted_corpus
    result = edit_documents(PlantedPrior(), docs, strategy, seed=3)
    scores = score_documents(PlantedPrior(), docs, strategy.top_k)
    editable = [(np.arange(len(d)) > 0) & (d < 40) for d in docs]
    expected = [edit_reference(s, d, e, document_uniforms(3, i, len(d)), strategy)
                for i, (d, s, e) in enumerate(zip(docs, scores, editable))]
    assert [d.tolist() for d in result.documents] == expected
    p = [np.exp(s.target_log_probs.astype(np.float64))[e] for s, e in zip(scores, editable)]
    revised = [int(np.sum(x > strategy.up_threshold)) if strategy.up_threshold else 0 for x in p]
    dropped = [len(d) - len(x) for d, x in zip(docs, expected)]  # tokens removed
    assert result.counts[:, 0].tolist() == [max(len(d) - 1, 0) for d in docs]
    assert result.counts[:, 1].tolist() == revised and result.counts[:, 3].tolist() == dropped
    summary = result.summary()
    assert summary["tokens"] == sum(max(len(d) - 1, 0) for d in docs)
    assert summary["fraction_dropped"] == pytest.approx(sum(dropped) / summary["tokens"])
    assert (summary["fraction_revised"] > 0.05) == (strategy.up_threshold is not None)
    assert (summary["fraction_dropped"] > 0.05) == (strategy.low_threshold is not None)


@pytest.mark.parametrize("strategy", [make_strategy("up_revise", up_threshold=0.001),
                                      make_strategy("filtering", low_threshold=0.5)])
def test_byte_prior_edits_only_ascii_so_the_output_stays_valid_utf8(micro_model, strategy):
    """A random model gives every byte p near 1/257: every ASCII byte is revised (or dropped), and the
    multi-byte characters come out intact."""
    text = "café ñandú — 東京 naïve"
    prior = BytePrior(micro_model, batch_size=4)
    result = edit_documents(prior, [prior.encode(text)], strategy, seed=0)
    n_ascii = sum(c < 128 for c in text.encode())
    assert result.counts[0, 1] + result.counts[0, 3] == n_ascii
    edited = bytes(int(t) for t in result.documents[0][1:]).decode("utf-8")
    assert [c for c in edited if ord(c) >= 128] == [c for c in text if ord(c) >= 128]


@pytest.mark.parametrize("n, context, stride", [(2, 4, 2), (5, 4, 4), (40, 8, 3), (97, 16, 8), (17, 16, 1)])
def test_windows_score_every_token_once_with_enough_context(n, context, stride):
    context_of = {}
    for start, stop, first in windows(n, context, stride):
        assert stop - start - 1 <= context  # the model reads tokens[start:stop-1]
        for t in range(first, stop):
            assert t not in context_of
            context_of[t] = t - start
    assert sorted(context_of) == list(range(1, n))
    assert all(c == t if t <= context else c >= context + 1 - stride for t, c in context_of.items())


def test_long_documents_are_scored_with_full_prefix_then_windows(micro_model):
    """Scores of a document 6x the context equal a direct teacher-forced pass over each window
    (the full prefix while it fits); no position is left unscored."""
    model = micro_model
    prior = BytePrior(model, batch_size=4)
    doc = prior.encode("ok then " * 12)  # 97 tokens, context 16
    (scores,) = score_documents(prior, [doc], top_k=8, stride=5)
    assert np.isnan(scores.target_log_probs[0]) and not np.isnan(scores.target_log_probs[1:]).any()
    spans = windows(len(doc), prior.context, 5)
    for start, stop, first in (spans[0], spans[1], spans[-1]):
        lp = jax.nn.log_softmax(model(doc[None, start : stop - 1]), axis=-1)[0]
        direct = np.take_along_axis(np.asarray(lp), doc[start + 1 : stop, None], -1)[:, 0]
        np.testing.assert_allclose(scores.target_log_probs[first:stop], direct[first - start - 1 :], atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="sharpen"), "unknown strategy 'sharpen'"),
    (dict(name="up_revise", up_threshold=1.0), r"up threshold 1.0 is outside \(0, 1\)"),
    (dict(name="filtering", low_threshold=0.0), r"low threshold 0.0 is outside \(0, 1\)"),
    (dict(name="filtering", low_threshold=-2.0), r"outside \(0, 1\)"),
    (dict(name="up_revise", beta=0.0), "beta 0.0 must be positive"),
    (dict(name="up_revise", top_k=0), "top-k 0 must be in"),
    (dict(name="up_revise", top_k=300, vocab_size=257), r"top-k 300 must be in \[1, 257\]"),
    (dict(name="filtering", up_threshold=0.9), "--up-threshold does not apply to strategy 'filtering'"),
    (dict(name="up_revise", low_threshold=0.01), "--low-threshold does not apply to strategy 'up_revise'"),
    (dict(name="low_drop_up_revise", low_threshold=0.999, up_threshold=0.5), "must be below the up threshold"),
])
def test_bad_strategy_parameters_are_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        make_strategy(**kwargs)


def test_strategy_defaults_are_the_papers():
    assert (STRATEGIES["up_revise"].up_threshold, STRATEGIES["up_revise"].beta) == (0.99, 1.5)
    low_drop = STRATEGIES["low_drop_up_revise"]
    assert (low_drop.up_threshold, low_drop.low_threshold, low_drop.beta) == (0.99, 0.001, 1.0)
    assert (STRATEGIES["filtering"].up_threshold, STRATEGIES["filtering"].low_threshold) == (None, 0.001)
    assert all(s.top_k == 8 for s in STRATEGIES.values()) and make_strategy("up_revise").top_k == 8


def test_resampled_candidates_follow_softmax_of_log_probs_over_beta():
    """40000 positions with identical top-4 log-probs (observed token "x" first): candidate frequencies
    match softmax(lp / beta) within 5 standard errors; negative control: beta = 1 is rejected."""
    shape = (10, 4000)
    top = np.broadcast_to(np.log(np.array([0.995, 0.003, 0.0015, 0.0005], np.float32)), (*shape, 4))
    ids = np.broadcast_to(np.array([ord("x"), 0, 1, 2], np.int32), (*shape, 4))
    scores = Scores(np.ascontiguousarray(top), np.ascontiguousarray(ids), np.full(shape, np.log(0.995), np.float32))
    strategy = make_strategy("up_revise", beta=1.5, top_k=4)
    tokens = np.full(shape, ord("x"), np.int32)
    uniforms = np.stack([document_uniforms(0, i, shape[1]) for i in range(shape[0])])
    new, _, revised, _, _ = edit_tokens(scores, tokens, np.ones(shape, bool), np.ones(shape, bool), uniforms, strategy)
    assert np.asarray(revised).all()
    new = np.asarray(new).ravel()
    freq = np.array([np.mean(new == token) for token in ids[0, 0]])
    expected = np.exp(top[0, 0] / 1.5) / np.exp(top[0, 0] / 1.5).sum()
    se = np.sqrt(expected * (1 - expected) / new.size)
    assert (np.abs(freq - expected) < 5 * se).all()
    beta_one = np.exp(top[0, 0]) / np.exp(top[0, 0]).sum()
    assert (np.abs(freq - beta_one) > 5 * se).any()

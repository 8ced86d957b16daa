"""Vectorised ToEdit against the per-token reference, strategy semantics and validation."""

import equinox as eqx
import jax
import numpy as np
import pytest

from linreg_collapse.errors import InputError
from linreg_collapse.lm.data import VOCAB_SIZE, Corpus, corpus_from_texts
from linreg_collapse.lm.model import ModelConfig, Transformer
from linreg_collapse.lm.toedit import (
    STRATEGIES, Scores, edit_corpus, edit_reference, edit_tokens, edit_uniforms, make_strategy, score,
)

from linreg_collapse.lm.train import sample_corpus

MICRO = ModelConfig(VOCAB_SIZE, block_size=16, d_model=16, n_layers=1, n_heads=2)
TEXTS = ["the cat sat on the mat", "a b a b a b a b a b a b a b a b a b a b", "zz", "ok then, fine"]


@pytest.fixture(scope="module")
def corpus():
    return corpus_from_texts(TEXTS, block_size=16)


@pytest.fixture(scope="module")
def confident():
    """A random model with its embedding scaled by 30 (peaked predictions) and a corpus of its own samples
    plus TEXTS: about 16% of tokens have p > 0.99, 43% p < 0.001 and 41% neither, so every rule fires."""
    model = Transformer(MICRO, jax.random.PRNGKey(0))
    model = eqx.tree_at(lambda m: m.embed, model, model.embed * 30.0)
    return model, Corpus.concat([sample_corpus(model, 4, seed=0, batch_size=8), corpus_from_texts(TEXTS, 16)])


def synthetic_scores(corpus, k=8, seed=0):
    """Log-probabilities with controlled peaks: per position a random logit vector whose observed
    token gets +12, 0 or -12 (p near 1, middling, near 0)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(corpus), corpus.block_size, VOCAB_SIZE))
    boost = rng.choice([12.0, 0.0, -12.0], size=logits.shape[:2])
    np.put_along_axis(logits, corpus.rows[:, 1:, None], np.take_along_axis(logits, corpus.rows[:, 1:, None], -1)
                      + boost[..., None], axis=-1)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    order = np.argsort(-log_probs, axis=-1)[..., :k]
    return Scores(np.take_along_axis(log_probs, order, -1).astype(np.float32), order.astype(np.int32),
                  np.take_along_axis(log_probs, corpus.rows[:, 1:, None], -1)[..., 0].astype(np.float32))


def vectorised_rows(corpus, scores, uniforms, strategy):
    packed, n_kept, revised, _, dropped = (np.asarray(a) for a in edit_tokens(
        scores, corpus.rows[:, 1:], corpus.target_mask, uniforms, strategy))
    return [row[:n].tolist() for row, n in zip(packed, n_kept)], revised, dropped


@pytest.mark.parametrize("strategy", [
    *STRATEGIES.values(),
    make_strategy("low_drop_up_revise", up_threshold=0.6, low_threshold=0.2, beta=0.7, top_k=3),
    make_strategy("up_revise", up_threshold=0.001, top_k=2),  # observed token often outside the top-k
])
def test_vectorised_edit_equals_the_per_token_reference(corpus, strategy):
    scores = synthetic_scores(corpus, k=strategy.top_k)
    uniforms = edit_uniforms(7, corpus)
    rows, revised, dropped = vectorised_rows(corpus, scores, uniforms, strategy)
    assert rows == edit_reference(scores, corpus, uniforms, strategy)
    p = np.exp(scores.target_log_probs)[corpus.target_mask]
    if strategy.up_threshold is None:
        assert not revised.any()
    else:
        assert revised.any() and (revised[corpus.target_mask] == (p > strategy.up_threshold)).all()
    if strategy.low_threshold is None:
        assert not dropped.any()
    else:
        assert dropped.any() and (dropped[corpus.target_mask] == (p < strategy.low_threshold)).all()


@pytest.mark.parametrize("name", STRATEGIES)
def test_edit_corpus_with_a_model_equals_the_reference(confident, name):
    model, corpus = confident
    strategy = STRATEGIES[name]
    result = edit_corpus(model, corpus, strategy, seed=3, batch_size=3)
    scores = score(model, corpus, strategy.top_k, batch_size=3)
    reference = edit_reference(scores, corpus, edit_uniforms(3, corpus), strategy)
    assert [row[1:n].tolist() for row, n in zip(result.corpus.rows, result.corpus.lengths)] == reference
    stats = result.summary(corpus.target_mask)
    assert stats["fraction_revised"] > 0.05 if strategy.up_threshold else stats["fraction_revised"] == 0
    assert stats["fraction_dropped"] > 0.05 if strategy.low_threshold else stats["fraction_dropped"] == 0
    total = np.bincount(corpus.doc_ids, corpus.target_mask.sum(1))
    np.testing.assert_allclose(result.doc_fraction_revised * total,
                               np.bincount(corpus.doc_ids, result.revised.sum(1)))
    assert (result.changed <= result.revised).all()


def test_resampled_candidates_follow_softmax_of_log_probs_over_beta():
    """40000 positions with identical top-4 log-probs (observed token "x" first): candidate frequencies
    match softmax(lp / beta) within 5 standard errors; negative control: beta = 1 is rejected."""
    corpus = corpus_from_texts(["x" * 4000] * 10, block_size=4000)
    n = (len(corpus), corpus.block_size)
    top = np.broadcast_to(np.log(np.array([0.995, 0.003, 0.0015, 0.0005], np.float32)), (*n, 4))
    ids = np.broadcast_to(np.array([ord("x"), 0, 1, 2], np.int32), (*n, 4))
    scores = Scores(np.ascontiguousarray(top), np.ascontiguousarray(ids), np.full(n, np.log(0.995), np.float32))
    strategy = make_strategy("up_revise", beta=1.5, top_k=4)
    new, _, revised, _, _ = edit_tokens(scores, corpus.rows[:, 1:], corpus.target_mask, edit_uniforms(0, corpus),
                                        strategy)
    assert np.asarray(revised).all()
    new = np.asarray(new).ravel()
    freq = np.array([np.mean(new == token) for token in ids[0, 0]])
    expected = np.exp(top[0, 0] / 1.5) / np.exp(top[0, 0] / 1.5).sum()
    se = np.sqrt(expected * (1 - expected) / new.size)
    assert (np.abs(freq - expected) < 5 * se).all()
    beta_one = np.exp(top[0, 0]) / np.exp(top[0, 0]).sum()
    assert (np.abs(freq - beta_one) > 5 * se).any()


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="sharpen"), "unknown strategy 'sharpen'"),
    (dict(name="up_revise", up_threshold=1.0), r"up threshold 1.0 is outside \(0, 1\)"),
    (dict(name="filtering", low_threshold=0.0), r"low threshold 0.0 is outside \(0, 1\)"),
    (dict(name="filtering", low_threshold=-2.0), r"outside \(0, 1\)"),
    (dict(name="up_revise", beta=0.0), "beta 0.0 must be positive"),
    (dict(name="up_revise", top_k=0), "top-k 0 must be in"),
])
def test_bad_strategy_parameters_are_input_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        make_strategy(**kwargs)


def test_strategy_defaults_are_the_papers():
    assert (STRATEGIES["up_revise"].up_threshold, STRATEGIES["up_revise"].beta) == (0.99, 1.5)
    low_drop = STRATEGIES["low_drop_up_revise"]
    assert (low_drop.up_threshold, low_drop.low_threshold, low_drop.beta) == (0.99, 0.001, 1.0)
    assert (STRATEGIES["filtering"].up_threshold, STRATEGIES["filtering"].low_threshold) == (None, 0.001)

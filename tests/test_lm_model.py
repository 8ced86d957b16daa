"""Transformer, key/value-cache decoding, checkpoints, training and sampling (micro configs, CPU)."""

import equinox as eqx
import jax
import numpy as np
import pytest

from linreg_collapse.errors import InputError
from linreg_collapse.lm.data import BOS, VOCAB_SIZE, MarkovWordSource, corpus_from_texts
from linreg_collapse.lm.model import ModelConfig, Transformer, load_checkpoint, save_checkpoint
from linreg_collapse.lm.train import TrainConfig, sample_corpus, train

MICRO = ModelConfig(VOCAB_SIZE, block_size=16, d_model=16, n_layers=1, n_heads=2)
MICRO_TRAIN = TrainConfig(steps=40, batch_size=8, learning_rate=1e-2, warmup_steps=4)


@pytest.fixture(scope="module")
def corpus():
    source = MarkovWordSource(n_words=10, seed=0, mean_words=3.0)
    return corpus_from_texts(source.sample_texts(64, np.random.default_rng(0), 16), 16)


@pytest.fixture(scope="module")
def trained(corpus):
    return train(MICRO, corpus, MICRO_TRAIN, seed=0)


def test_cached_decoding_equals_the_full_forward_pass():
    model = Transformer(MICRO, jax.random.PRNGKey(1))
    tokens = jax.random.randint(jax.random.PRNGKey(2), (3, MICRO.block_size), 0, 256)
    full = model(tokens)
    cache = model.init_cache(3)
    decode_step = eqx.filter_jit(Transformer.decode_step)
    for position in range(MICRO.block_size):
        logits, cache = decode_step(model, tokens[:, position], jax.numpy.int32(position), cache)
        np.testing.assert_allclose(logits, full[:, position], atol=1e-5)


def test_training_lowers_the_loss_and_is_deterministic(trained, corpus):
    model, losses = trained
    assert losses[-5:].mean() < losses[:5].mean() - 1.0  # from ~log(257) = 5.5 to well below
    again, losses_again = train(MICRO, corpus, MICRO_TRAIN, seed=0)
    np.testing.assert_array_equal(losses, losses_again)
    _, other = train(MICRO, corpus, MICRO_TRAIN, seed=1)
    assert not np.array_equal(losses, other)


def test_checkpoint_round_trip_and_mismatch(tmp_path, trained):
    model, _ = trained
    path = tmp_path / "m.eqx"
    save_checkpoint(path, model)
    loaded = load_checkpoint(path, expected=MICRO)
    for a, b in zip(jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)),
                    jax.tree_util.tree_leaves(eqx.filter(loaded, eqx.is_array))):
        np.testing.assert_array_equal(a, b)
    other = ModelConfig(VOCAB_SIZE, block_size=16, d_model=32, n_layers=1, n_heads=2)
    with pytest.raises(InputError, match="does not match the model"):
        load_checkpoint(path, expected=other)
    truncated = tmp_path / "t.eqx"
    truncated.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(InputError, match="does not match the model"):
        load_checkpoint(truncated)
    (tmp_path / "junk.eqx").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="no valid model header"):
        load_checkpoint(tmp_path / "junk.eqx")


def test_sampling_is_deterministic_and_well_formed(trained):
    model, _ = trained
    a, b = sample_corpus(model, 20, seed=5, batch_size=8), sample_corpus(model, 20, seed=5, batch_size=8)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert not np.array_equal(a.rows, sample_corpus(model, 20, seed=6, batch_size=8).rows)
    assert (a.rows[:, 0] == BOS).all() and (a.rows[:, 1:] != BOS).all()
    assert ((a.lengths >= 2) & (a.lengths <= MICRO.block_size + 1)).all()
    ends = [row[1:n] for row, n in zip(a.rows, a.lengths)]
    assert all(ord("\n") not in e[:-1].tolist() for e in ends)  # a document stops at its first newline

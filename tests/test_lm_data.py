"""Byte tokenizer, corpus files and the exactly known source."""

import json
import math

import numpy as np
import pytest

from linreg_collapse.errors import InputError
from linreg_collapse.lm.data import (
    BOS, MarkovWordSource, corpus_from_texts, corpus_to_texts, decode, encode, read_texts, write_jsonl,
)


def test_encode_decode_round_trip_with_unicode():
    text = "naïve café ∑ 𝄞"
    assert encode(text)[0] == BOS
    assert decode(encode(text)) == text


def test_long_documents_span_rows_and_come_back_whole():
    texts = ["x" * 37, "short", "ü" * 20]
    corpus = corpus_from_texts(texts, block_size=8)
    assert corpus.rows.shape[1] == 9
    assert (corpus.lengths <= 9).all()
    assert np.bincount(corpus.doc_ids).tolist() == [5, 1, 5]  # 37 bytes -> 5 rows of 8 targets
    assert corpus.n_tokens == sum(len(t.encode()) for t in texts)
    assert corpus_to_texts(corpus) == texts


def test_jsonl_and_plain_text_reading(tmp_path):
    jsonl = tmp_path / "c.jsonl"
    write_jsonl(jsonl, ["a b", "c\nd"])
    assert read_texts(jsonl) == ["a b", "c\nd"]
    plain = tmp_path / "c.txt"
    plain.write_text("first para\nline two\n\n\nsecond\n")
    assert read_texts(plain) == ["first para\nline two", "second"]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"text": "ok"}\n{"text": broken}\n', "c.jsonl:2: malformed JSON"),
        ('{"text": "ok"}\n{"body": "x"}\n', "c.jsonl:2: expected an object with a string field 'text'"),
        ("\n\n", "the corpus is empty"),
        ('{"text": ""}\n', "the corpus is empty"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, content, message):
    path = tmp_path / "c.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_texts(path)


@pytest.fixture(scope="module")
def source():
    return MarkovWordSource(n_words=30, seed=1, mean_words=4.0)


def test_source_conditionals_multiply_to_the_word_chain_probability(source):
    """Chain rule: prod_t p(byte_t | prefix) = P[START, w1] P[w1, w2] ... P[wL, END] for whole documents."""
    texts = source.sample_texts(200, np.random.default_rng(0), max_bytes=10_000)
    corpus = corpus_from_texts(texts, block_size=max(len(t) for t in texts))
    probs = source.next_token_probs(corpus)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-12)
    targets = corpus.rows[:, 1:][corpus.target_mask]
    byte_logp = np.log(probs[np.arange(len(targets)), targets])
    per_doc = np.bincount(np.repeat(np.arange(len(texts)), corpus.lengths - 1), byte_logp)
    index = {w: i for i, w in enumerate(source.words)}
    for doc, text in enumerate(texts):
        states = [0] + [index[w] + 1 for w in text.split()]
        outcomes = [index[w] for w in text.split()] + [len(source.words)]
        expected = sum(math.log(source.transitions[s, o]) for s, o in zip(states, outcomes))
        assert per_doc[doc] == pytest.approx(expected, abs=1e-9)


def test_first_byte_frequencies_match_the_exact_distribution(source):
    """Empirical first bytes of 4000 documents vs the exact p(first byte); negative control: a
    uniform distribution over the same support is rejected by the same statistic."""
    texts = source.sample_texts(4000, np.random.default_rng(2), max_bytes=20)
    corpus = corpus_from_texts(texts, block_size=20)
    exact = source.next_token_probs(corpus.select(slice(1)))[0]
    counts = np.bincount(corpus.rows[:, 1], minlength=exact.size)
    support = exact > 0
    chi2 = lambda p: float((((counts - 4000 * p) ** 2)[support] / (4000 * p[support])).sum())  # noqa: E731
    dof = int(support.sum()) - 1
    assert chi2(exact) < dof + 5 * math.sqrt(2 * dof)
    assert chi2(support / support.sum()) > dof + 5 * math.sqrt(2 * dof)


def test_source_is_deterministic_in_its_seed():
    a, b = MarkovWordSource(20, seed=3), MarkovWordSource(20, seed=3)
    assert a.words == b.words and np.array_equal(a.transitions, b.transitions)
    assert a.sample_texts(5, np.random.default_rng(0), 50) == b.sample_texts(5, np.random.default_rng(0), 50)
    assert json.dumps(MarkovWordSource(20, seed=4).words) != json.dumps(a.words)

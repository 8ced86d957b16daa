"""Priors and teacher-forced scoring of whole documents, with the full prefix up to the prior's context.

A prior (:class:`BytePrior`, or :class:`.hf.HFPrior` for a local Hugging Face causal LM) reads at most
``context`` tokens. A document of n tokens is scored in windows (:func:`windows`) of at most
context + 1 tokens that start every ``stride`` tokens: each window scores the positions its predecessor
did not reach, so every token t >= 1 is scored exactly once, with its whole prefix while t <= context and
with at least context + 1 - stride tokens of context after that (consecutive windows overlap by
context + 1 - stride tokens). The default stride is context // 2. Windows of all documents in a batch are
scored together, ``batch_size`` windows per forward pass.

:func:`edit_documents` scores documents and applies the vectorised ToEdit of :mod:`.toedit` to them.
"""

from __future__ import annotations

import dataclasses
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..errors import require
from .data import Corpus, corpus_documents, corpus_from_documents, decode, encode
from .model import Transformer
from .toedit import EditStrategy, Scores, document_uniforms, edit_tokens

ASCII = 128


def windows(n_tokens: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """(start, stop, first) per window: the model reads tokens[start:stop-1] (at most ``context``) and
    the window scores positions first..stop-1. Consecutive windows start ``stride`` apart."""
    require(1 <= stride <= context, f"stride {stride} must be in [1, context {context}]")
    out, start, first = [], 0, 1
    while first < n_tokens:
        stop = min(start + context + 1, n_tokens)
        out.append((start, stop, first))
        start, first = start + stride, stop
    return out


def check_memory(batch_size: int, context: int, vocab_size: int, available: int | None = None) -> None:
    """InputError, before any work, if a batch's float32 log-probabilities (batch x context x vocab, held
    about three times: logits, log-softmax, top-k work space) exceed the available memory. A lower bound
    (weights and activations come on top), so a run it lets through can still run short."""
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    need = 3 * 4 * batch_size * context * vocab_size
    require(need <= available,
            f"--batch-size {batch_size} x context {context} x vocabulary {vocab_size} needs about "
            f"{need / 2**30:.1f} GiB for the log-probabilities, {available / 2**30:.1f} GiB available: "
            f"lower --batch-size")


class BytePrior:
    """The built-in byte-level transformer as a prior.

    UTF-8 rule: only ASCII bytes are edited, and only into ASCII bytes (the candidates are the k most
    likely ASCII bytes, plus the observed byte). A byte of a multi-byte character is scored and kept,
    so the edited bytes are always valid UTF-8 and every non-ASCII character survives intact. The
    thresholds use the observed byte's probability under the full distribution.
    """

    def __init__(self, model: Transformer, batch_size: int = 256, context: int | None = None):
        self.model, self.batch_size = model, batch_size
        self.context = min(model.config.block_size, context or model.config.block_size)
        self.vocab_size = model.config.vocab_size

    @staticmethod
    def encode(text: str) -> np.ndarray:
        return np.asarray(encode(text), np.int32)

    @staticmethod
    def decode(tokens) -> str:
        return decode(tokens)

    @staticmethod
    def editable(tokens: np.ndarray) -> np.ndarray:
        return tokens < ASCII

    def score_windows(self, batch: list[np.ndarray], top_k: int) -> list[Scores]:
        rows = np.zeros((self.batch_size, self.model.config.block_size + 1), np.int32)
        for i, tokens in enumerate(batch):
            rows[i, : len(tokens)] = tokens
        top_lp, top_ids, target_lp = (np.asarray(a) for a in _score_rows(self.model, rows, top_k))
        return [Scores(top_lp[i, : len(t) - 1], top_ids[i, : len(t) - 1], target_lp[i, : len(t) - 1])
                for i, t in enumerate(batch)]


@eqx.filter_jit
def _score_rows(model, rows, k: int):
    log_probs = jax.nn.log_softmax(model(rows[:, :-1]), axis=-1)
    ascii_only = jnp.where(jnp.arange(log_probs.shape[-1]) < ASCII, log_probs, -jnp.inf)
    top_log_probs, top_ids = jax.lax.top_k(ascii_only, k)
    return top_log_probs, top_ids, jnp.take_along_axis(log_probs, rows[:, 1:, None], axis=-1)[..., 0]


def score_documents(prior, documents: list[np.ndarray], top_k: int, stride: int | None = None) -> list[Scores]:
    """Scores of every position of every document, position 0 NaN (it has no score)."""
    stride = prior.context // 2 if stride is None else stride
    scores = [Scores(np.full((len(d), top_k), np.nan, np.float32), np.zeros((len(d), top_k), np.int32),
                     np.full(len(d), np.nan, np.float32)) for d in documents]
    jobs = [(doc, start, stop, first) for doc, tokens in enumerate(documents)
            for start, stop, first in windows(len(tokens), prior.context, stride)]
    for at in range(0, len(jobs), prior.batch_size):
        batch = jobs[at : at + prior.batch_size]
        results = prior.score_windows([documents[doc][start:stop] for doc, start, stop, _ in batch], top_k)
        for (doc, start, stop, first), result in zip(batch, results):
            # output j of a window predicts its token j + 1, i.e. position start + j + 1
            part = slice(first - start - 1, stop - start - 1)
            scores[doc].top_log_probs[first:stop] = result.top_log_probs[part]
            scores[doc].top_ids[first:stop] = result.top_ids[part]
            scores[doc].target_log_probs[first:stop] = result.target_log_probs[part]
    return scores


@dataclasses.dataclass
class DocumentEdits:
    """Edited token sequences and, per document, counts of scored / revised / changed / dropped tokens."""

    documents: list[np.ndarray]
    counts: np.ndarray  # (n_docs, 4) int: scored, revised, changed (revised to another token), dropped

    COLUMNS = ("scored", "revised", "changed", "dropped")

    def summary(self) -> dict:
        """Fractions of all scored tokens (padding and unscored first tokens never count)."""
        total = self.counts.sum(0)
        n = max(int(total[0]), 1)
        return {"tokens": int(total[0]), **{f"fraction_{c}": float(total[i] / n)
                                            for i, c in enumerate(self.COLUMNS) if i}}


def _bucket(n: int) -> int:
    """Padded length: the next power of two, at least 64 (so edit_tokens compiles for few shapes)."""
    return max(64, 1 << max(n - 1, 1).bit_length())


def edit_documents(prior, documents: list[np.ndarray], strategy: EditStrategy, seed: int, first_index: int = 0,
                   stride: int | None = None, edit_batch: int = 64) -> DocumentEdits:
    """Score ``documents`` with ``prior`` and apply ``strategy``. Document i (numbered from
    ``first_index``) draws its uniforms from (seed, first_index + i) alone, so the result does not depend
    on how documents are batched. A document's first token and non-editable tokens are kept."""
    scores = score_documents(prior, documents, strategy.top_k, stride)
    edited, counts = [], []
    for at in range(0, len(documents), edit_batch):
        docs, docs_scores = documents[at : at + edit_batch], scores[at : at + edit_batch]
        width = _bucket(max(len(d) for d in docs))
        tokens = np.zeros((edit_batch, width), np.int32)
        uniforms = np.zeros((edit_batch, width), np.float32)
        editable = np.zeros((edit_batch, width), bool)
        padded = Scores(np.zeros((edit_batch, width, strategy.top_k), np.float32),
                        np.zeros((edit_batch, width, strategy.top_k), np.int32),
                        np.zeros((edit_batch, width), np.float32))
        for i, (doc, s) in enumerate(zip(docs, docs_scores)):
            n = len(doc)
            tokens[i, :n] = doc
            uniforms[i, :n] = document_uniforms(seed, first_index + at + i, n)
            editable[i, 1:n] = prior.editable(doc[1:])
            padded.top_log_probs[i, :n], padded.top_ids[i, :n], padded.target_log_probs[i, :n] = (
                s.top_log_probs, s.top_ids, s.target_log_probs)
        valid = np.arange(width)[None, :] < np.array([len(d) for d in docs] + [0] * (edit_batch - len(docs)))[:, None]
        packed, n_kept, revised, changed, dropped = (
            np.asarray(a) for a in edit_tokens(padded, tokens, valid, editable, uniforms, strategy))
        for i, doc in enumerate(docs):
            edited.append(packed[i, : n_kept[i]])
            counts.append([max(len(doc) - 1, 0), revised[i].sum(), changed[i].sum(), dropped[i].sum()])
    return DocumentEdits(edited, np.asarray(counts, np.int64).reshape(-1, 4))


def edit_corpus(model: Transformer, corpus: Corpus, strategy: EditStrategy, seed: int,
                batch_size: int = 256) -> tuple[Corpus, DocumentEdits]:
    """Edit every document of ``corpus`` with the byte model; returns the edited corpus (same row width)
    and the edits."""
    result = edit_documents(BytePrior(model, batch_size), corpus_documents(corpus), strategy, seed)
    return corpus_from_documents(result.documents, corpus.block_size), result

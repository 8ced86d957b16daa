"""Byte-level tokenizer, corpora (JSONL with a ``text`` field, plain text) and the built-in "human" source.

Token ids 0..255 are bytes; ``BOS`` (256) opens every document, so the vocabulary has 257 entries.
A :class:`Corpus` holds fixed-width rows of ``block_size + 1`` tokens: row[:-1] is the model input,
row[1:] the targets, and ``lengths`` counts the real tokens (BOS included). A document longer than a
row continues in the next row, which repeats the last token of the previous one as its first input.

The built-in source is a first-order Markov chain over a Zipfian vocabulary of words, emitted as bytes
(each word followed by a space, the end of a document as a newline). Its next-byte distribution given
any prefix is known exactly (a trie over the word strings), so the KL divergence of a model from the
source, the language-model counterpart of the linear model's test error, is computed exactly.
"""

from __future__ import annotations

import dataclasses
import json
import string
from pathlib import Path

import numpy as np

from ..errors import InputError, require
from ..io import write_text

BOS = 256
VOCAB_SIZE = 257


def encode(text: str) -> list[int]:
    return [BOS, *text.encode("utf-8")]


def decode(tokens) -> str:
    return bytes(int(t) for t in tokens if t < 256).decode("utf-8", errors="replace")


@dataclasses.dataclass
class Corpus:
    """Token rows (n, block_size + 1), real lengths (n,), and the document each row belongs to (n,)."""

    rows: np.ndarray
    lengths: np.ndarray
    doc_ids: np.ndarray

    @property
    def block_size(self) -> int:
        return self.rows.shape[1] - 1

    @property
    def target_mask(self) -> np.ndarray:
        """(n, block_size): True where row[1:] holds a real target token."""
        return np.arange(self.block_size)[None, :] < (self.lengths[:, None] - 1)

    @property
    def n_tokens(self) -> int:
        return int(self.target_mask.sum())

    def __len__(self) -> int:
        return len(self.rows)

    def select(self, index) -> "Corpus":
        return Corpus(self.rows[index], self.lengths[index], self.doc_ids[index])

    @staticmethod
    def concat(parts) -> "Corpus":
        offsets = np.cumsum([0] + [int(p.doc_ids.max()) + 1 for p in parts[:-1]])
        return Corpus(
            np.concatenate([p.rows for p in parts]),
            np.concatenate([p.lengths for p in parts]),
            np.concatenate([p.doc_ids + off for p, off in zip(parts, offsets)]),
        )


def corpus_from_texts(texts, block_size: int) -> Corpus:
    """Tokenise documents into rows of ``block_size + 1`` tokens (long documents span several rows)."""
    return corpus_from_documents([encode(text) for text in texts], block_size)


def corpus_from_documents(documents, block_size: int) -> Corpus:
    """Token sequences (each opening with BOS) into rows of ``block_size + 1`` tokens; a document longer
    than a row continues in the next, which repeats the previous row's last token as its first input."""
    rows, lengths, doc_ids = [], [], []
    for doc, tokens in enumerate(documents):
        tokens = [int(t) for t in tokens]
        for start in range(0, max(len(tokens) - 1, 1), block_size):
            chunk = tokens[start : start + block_size + 1]
            rows.append(chunk + [0] * (block_size + 1 - len(chunk)))
            lengths.append(len(chunk))
            doc_ids.append(doc)
    require(len(rows) > 0, "the corpus is empty: it has no documents")
    return Corpus(np.asarray(rows, np.int32), np.asarray(lengths, np.int32), np.asarray(doc_ids, np.int32))


def corpus_documents(corpus: Corpus) -> list[np.ndarray]:
    """Inverse of :func:`corpus_from_documents`: each document's tokens, BOS included."""
    pieces: dict[int, list[np.ndarray]] = {}
    for row, length, doc in zip(corpus.rows, corpus.lengths, corpus.doc_ids):
        part = pieces.setdefault(int(doc), [])
        part.append(row[:length] if not part else row[1:length])
    return [np.concatenate(pieces[d]) for d in sorted(pieces)]


def corpus_to_texts(corpus: Corpus) -> list[str]:
    """The text of each document of ``corpus``."""
    return [decode(tokens) for tokens in corpus_documents(corpus)]


def iter_texts(path):
    """Documents of a ``.jsonl`` file (one JSON object with a string ``text`` per line; blank lines
    skipped) or of a plain-text file (any other suffix: documents are separated by one or more blank
    lines, and each keeps its inner single newlines), read one at a time in constant memory.
    InputError names the file and line of malformed input."""
    path = Path(path)
    require(path.is_file(), f"input file {path} does not exist")
    jsonl = path.suffix == ".jsonl"
    with open(path, encoding="utf-8") as lines:
        paragraph: list[str] = []
        try:
            for number, line in enumerate(lines, start=1):
                if jsonl:
                    if line.strip():
                        yield _jsonl_text(path, number, line)
                elif line.strip():
                    paragraph.append(line)
                elif paragraph:
                    yield "".join(paragraph).strip("\n")
                    paragraph = []
        except UnicodeDecodeError as err:
            raise InputError(f"{path}: not UTF-8 text (byte {err.start} of the block read)") from None
        if paragraph:
            yield "".join(paragraph).strip("\n")


def _jsonl_text(path, number: int, line: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}:{number}: malformed JSON ({err.msg})") from None
    require(isinstance(record, dict) and isinstance(record.get("text"), str),
            f"{path}:{number}: expected an object with a string field 'text'")
    return record["text"]


def read_texts(path) -> list[str]:
    """All documents of ``path`` (see :func:`iter_texts`); InputError for an empty corpus."""
    texts = list(iter_texts(path))
    require(any(texts), f"{path}: the corpus is empty (no non-empty document)")
    return texts


def write_jsonl(path, texts) -> None:
    """Write one ``{"text": ...}`` object per line, atomically."""
    write_text(path, "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts))


class MarkovWordSource:
    """Documents w_1 w_2 ... w_L: w_1 ~ P[START], w_{i+1} ~ P[w_i], stop with probability ``p_end``.

    P[s, w] is proportional to zipf(w) * exp(noise * g_sw), zipf(w) = (rank w)^-zipf_exponent and g
    standard normal, so each word has its own preferred successors on top of a Zipfian marginal.
    Frequent words are short. Bytes of a document: "w_1 w_2 ... w_L \\n".
    """

    def __init__(self, n_words=300, seed=0, zipf_exponent=1.1, noise=1.5, mean_words=10.0):
        rng = np.random.default_rng(seed)
        lengths = np.sort(np.clip(rng.poisson(3.0, n_words) + 1, 1, 10))
        words: list[str] = []
        seen: set[str] = set()
        for length in lengths:
            while (word := "".join(rng.choice(list(string.ascii_lowercase), length))) in seen:
                pass
            seen.add(word)
            words.append(word)
        self.words = words
        zipf = np.arange(1, n_words + 1, dtype=float) ** -zipf_exponent
        weights = zipf * np.exp(noise * rng.standard_normal((n_words + 1, n_words)))
        p_end = 1.0 / mean_words
        # rows: state 0 = START, state w + 1 = after word w; columns: words, then END
        self.transitions = np.concatenate(
            [weights / weights.sum(1, keepdims=True) * (1 - p_end), np.full((n_words + 1, 1), p_end)], axis=1
        )
        self.transitions[0, :-1] /= self.transitions[0, :-1].sum()
        self.transitions[0, -1] = 0.0  # no empty documents
        self._build_trie([w + " " for w in words] + ["\n"])

    def _build_trie(self, outcome_strings):
        children = [dict()]
        passes = []  # (outcome, node) pairs: outcome's string passes through node
        self.terminal_outcome = {}
        for outcome, text in enumerate(outcome_strings):
            node = 0
            passes.append((outcome, 0))
            for byte in text.encode():
                if byte not in children[node]:
                    children[node][byte] = len(children)
                    children.append({})
                node = children[node][byte]
                passes.append((outcome, node))
            self.terminal_outcome[node] = outcome
        self.children = np.full((len(children), VOCAB_SIZE), -1, np.int64)
        for node, edges in enumerate(children):
            for byte, child in edges.items():
                self.children[node, byte] = child
        through = np.zeros((len(outcome_strings), len(children)))
        through[tuple(np.array(passes).T)] = 1.0
        self.node_mass = self.transitions @ through  # (states, nodes): P(next outcome passes node | state)

    def sample_texts(self, n_docs: int, rng: np.random.Generator, max_bytes: int) -> list[str]:
        """``n_docs`` documents, each cut to at most ``max_bytes`` bytes."""
        cumulative = np.cumsum(self.transitions, axis=1)
        end = len(self.words)
        texts = []
        for _ in range(n_docs):
            state, parts, size = 0, [], 0
            while size < max_bytes:
                outcome = min(int(np.searchsorted(cumulative[state], rng.random() * cumulative[state, -1])), end)
                if outcome == end:
                    parts.append("\n")
                    break
                parts.append(self.words[outcome] + " ")
                size += len(parts[-1])
                state = outcome + 1
            texts.append("".join(parts)[:max_bytes])
        return texts

    def next_token_probs(self, corpus: Corpus) -> np.ndarray:
        """Exact source distribution of every target token, (n_targets, V), in ``corpus.target_mask`` order.

        p(next byte c | state s, trie node u) = mass[s, child(u, c)] / mass[s, u].
        Rows must start at a document start (each document fits in one row).
        """
        require(bool((np.bincount(corpus.doc_ids) == 1).all()), "source probabilities need one row per document")
        states, nodes = [], []
        for row, length in zip(corpus.rows, corpus.lengths):
            state, node = 0, 0
            for byte in row[1:length]:
                states.append(state)
                nodes.append(node)
                node = self.children[node, byte]
                require(node >= 0, f"byte {byte} is impossible under the source")
                if node in self.terminal_outcome:
                    state, node = self.terminal_outcome[node] + 1, 0
        states, nodes = np.asarray(states), np.asarray(nodes)
        child = self.children[nodes]
        mass = np.where(child >= 0, self.node_mass[states[:, None], np.maximum(child, 0)], 0.0)
        return mass / self.node_mass[states, nodes][:, None]

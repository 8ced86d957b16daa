"""``lm edit``: a corpus file edited by a prior, streamed in constant memory and resumable by line.

Documents are read one at a time (:func:`.data.iter_texts`), edited in chunks of ``chunk`` documents
(:func:`.scoring.edit_documents`) and appended to ``OUT.partial`` (one ``{"text": ...}`` line each),
with one line of counts per document in ``OUT.partial.counts``. Both are flushed after every chunk; a
rerun with the same settings (kept in ``OUT.partial.json``) keeps the complete lines and continues with
the next document. Document i draws its randomness from (seed, i), so a resumed run writes the same
file as an uninterrupted one. When every document is done, ``OUT.partial`` is moved to ``OUT``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError, require
from ..io import atomic_path, write_json
from ..progress import Progress
from .data import iter_texts
from .model import load_checkpoint
from .scoring import BytePrior, DocumentEdits, edit_documents
from .toedit import EditStrategy


def load_prior(spec: str, batch_size: int, context: int | None = None):
    """``builtin:MODEL.eqx`` (a checkpoint of ``lm train``) or ``hf:DIR`` (a local Hugging Face model),
    reading at most ``context`` tokens (default: the model's maximum)."""
    kind, _, location = spec.partition(":")
    require(kind in ("builtin", "hf") and location,
            f"--prior {spec!r}: expected builtin:MODEL.eqx or hf:DIR")
    if kind == "builtin":
        return BytePrior(load_checkpoint(location), batch_size, context)
    from .hf import HFPrior

    return HFPrior(location, batch_size, context=context)


def _keep_lines(path: Path, limit: float = float("inf")) -> int:
    """Cut ``path`` after its first ``limit`` complete (newline-terminated) lines, dropping a trailing
    partial line; returns how many lines it keeps (0 for a missing file). Reads line by line."""
    if not path.exists():
        return 0
    count = end = 0
    with open(path, "rb") as f:
        for line in f:
            if count == limit or not line.endswith(b"\n"):
                break
            count, end = count + 1, end + len(line)
    os.truncate(path, end)
    return count


def edit_file(prior, settings: dict, in_path, out_path, strategy: EditStrategy, seed: int, limit: int | None = None,
              stride: int | None = None, chunk: int = 64, progress: bool = True, stats_path=None) -> dict:
    """Edit the documents of ``in_path`` (the first ``limit``) into ``out_path``; returns the summary.
    ``settings`` (JSON-able) identifies the run: a partial output of other settings is refused."""
    out = Path(out_path)
    partial, counts_path, meta = (out.with_name(out.name + suffix) for suffix in (".partial", ".partial.counts",
                                                                                   ".partial.json"))
    if meta.exists() and json.loads(meta.read_text()) != settings:
        raise InputError(f"--out {out}: {partial} holds a run with other settings; delete it or choose another --out")
    done = min(_keep_lines(partial), _keep_lines(counts_path))
    for path in (partial, counts_path):
        _keep_lines(path, done)
    texts = itertools.islice(iter_texts(in_path), limit)
    first = next(texts, None)
    require(first is not None, f"{in_path}: the corpus is empty (no document)")
    write_json(meta, settings)
    texts = itertools.islice(itertools.chain([first], texts), done, None)
    index = done
    with open(partial, "a", encoding="utf-8") as text_out, open(counts_path, "a") as count_out, \
            Progress(None, "lm edit", "doc", enabled=progress, initial=done) as bar:
        while batch := list(itertools.islice(texts, chunk)):
            _edit_chunk(prior, batch, strategy, seed, index, stride, text_out, count_out)
            index += len(batch)
            bar.update(len(batch))
    counts = np.loadtxt(counts_path, dtype=np.int64, ndmin=2).reshape(-1, 4)
    summary = {"documents": len(counts), **DocumentEdits([], counts).summary()}
    if stats_path is not None:
        _write_stats(stats_path, strategy, summary, counts)
    os.replace(partial, out)
    counts_path.unlink()
    meta.unlink()
    return summary


def _edit_chunk(prior, texts, strategy, seed, first_index, stride, text_out, count_out) -> None:
    result = edit_documents(prior, [prior.encode(t) for t in texts], strategy, seed, first_index, stride)
    text_out.write("".join(json.dumps({"text": prior.decode(d)}, ensure_ascii=False) + "\n"
                           for d in result.documents))
    count_out.write("".join(" ".join(map(str, row)) + "\n" for row in result.counts.tolist()))
    text_out.flush()
    count_out.flush()


def _write_stats(path, strategy: EditStrategy, summary: dict, counts: np.ndarray) -> None:
    """Per-document fractions of scored tokens revised, changed and dropped, beside the summary."""
    scored = np.maximum(counts[:, :1], 1)
    documents = [dict(zip(("fraction_revised", "fraction_changed", "fraction_dropped"), row))
                 for row in (counts[:, 1:] / scored).tolist()]
    with atomic_path(path) as tmp:
        stats = {"strategy": dataclasses.asdict(strategy), **summary, "documents": documents}
        tmp.write_text(json.dumps(stats, indent=2) + "\n")

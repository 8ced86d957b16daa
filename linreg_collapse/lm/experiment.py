"""Iterative retraining of a small language model under the ToEdit paper's regimes, and its mixing experiment.

Generation 0 is trained on n documents of the built-in human source (:class:`.data.MarkovWordSource`).
Generation k >= 1 is a fresh model trained, for the same number of steps, on
  * ``human``:      n new documents from the source (control);
  * ``replace``:    n documents sampled from model k-1;
  * ``accumulate``: generation k-1's data plus n documents sampled from model k-1;
  * ``toedit``:     generation k-1's data edited token by token by model k-1 (:mod:`.toedit`, the paper's
                    ``up_revise``: p > 0.99, beta 1.5);
  * ``toedit_heavy``: the same with a lower up threshold (``heavy_up_threshold``, 0.5 by default), so the
                    edited share is large enough to move the excess loss.
Every model is scored on held-out human documents: cross-entropy H(source, model) per byte, perplexity,
and the excess loss KL(source || model) = H(source, model) - H(source), computed exactly from the
source's next-byte distribution at every held-out position. Each generation's training data is
described by word n-gram statistics and by its perplexity under model 0.

Mixing (paper's non-iterative experiment): model trained on (1 - s) n human + s n documents sampled
from model 0, for synthetic shares s.

Seeds: the whole experiment runs once per seed (``out_dir/seed{s}``, the preset's seed replaced by s);
:func:`summarise` gives the mean and a 95% Student-t interval over seeds of every metric per
generation, and of the excess loss relative to the same seed's generation 0.

Resume: each finished generation leaves its checkpoint, training data and metrics under its seed's
folder; a rerun with the same preset reloads them and continues.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from ..errors import require
from ..io import atomic_path, json_text, write_json
from ..progress import Progress, inner
from . import plots
from .data import VOCAB_SIZE, Corpus, MarkovWordSource, corpus_from_texts, corpus_to_texts
from .model import ModelConfig, load_checkpoint, save_checkpoint
from .plots import EDIT_REGIMES
from .scoring import edit_corpus
from .toedit import STRATEGIES
from .train import TrainConfig, document_perplexities, log_probs, sample_corpus, train

REGIMES = ("human", "replace", "accumulate", *EDIT_REGIMES)
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    model: ModelConfig
    train: TrainConfig
    n_words: int  # vocabulary of the source
    mean_words: float  # mean document length of the source, in words
    n_docs: int  # training documents per generation
    n_heldout: int
    generations: int  # N: generations 0..N
    strategy: str = "up_revise"
    mixing_shares: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
    seed: int = 0
    heavy_up_threshold: float = 0.5  # up_revise threshold of the toedit_heavy regime


PRESETS = {
    "tiny": Preset(
        "tiny",
        ModelConfig(VOCAB_SIZE, block_size=32, d_model=48, n_layers=2, n_heads=4),
        TrainConfig(steps=500, batch_size=32, learning_rate=5e-3, warmup_steps=50),
        n_words=64, mean_words=6.0, n_docs=1000, n_heldout=500, generations=4,
    ),
    "quick": Preset(  # the tiny model with fewer documents, steps and generations: several seeds on a CPU
        "quick",
        ModelConfig(VOCAB_SIZE, block_size=32, d_model=48, n_layers=2, n_heads=4),
        TrainConfig(steps=300, batch_size=32, learning_rate=5e-3, warmup_steps=30),
        n_words=64, mean_words=6.0, n_docs=500, n_heldout=300, generations=3, mixing_shares=(0.0, 0.5, 1.0),
    ),
    "small": Preset(
        "small",
        ModelConfig(VOCAB_SIZE, block_size=128, d_model=256, n_layers=6, n_heads=8),
        TrainConfig(steps=3000, batch_size=64, learning_rate=1e-3, warmup_steps=300),
        n_words=1000, mean_words=20.0, n_docs=20000, n_heldout=2000, generations=5,
    ),
}


def preset_dict(preset: Preset) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(preset)))


# ----------------------------------------------------------------------------- measurements


def model_metrics(model, heldout: Corpus, source_probs: np.ndarray) -> dict:
    """Held-out H(source, model), perplexity, H(source) and KL(source || model), nats per byte."""
    model_lp = log_probs(model, heldout)
    targets = heldout.rows[:, 1:][heldout.target_mask]
    at = np.arange(len(targets))
    cross_entropy = float(-model_lp[at, targets].mean())
    source_lp = np.log(np.where(source_probs > 0, source_probs, 1.0))
    kl = float((source_probs * (source_lp - model_lp)).sum(1).mean())
    return {
        "heldout_cross_entropy": cross_entropy,
        "heldout_perplexity": math.exp(cross_entropy),
        "heldout_source_cross_entropy": float(-source_lp[at, targets].mean()),
        "excess_loss": kl,
    }


def _ngrams(words, n):
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def ngram_stats(texts, reference_unigrams: collections.Counter, top=10) -> dict:
    """Word n-gram statistics: distinct-n = #distinct n-grams / #n-grams (n = 1, 2, 3), share of all
    n-grams taken by the ``top`` most frequent ones, and KL(P_data || P_ref) of word unigrams, P_ref
    add-1/2 smoothed over the union of both vocabularies."""
    docs = [t.split() for t in texts]
    stats = {}
    for n in (1, 2, 3):
        counts = collections.Counter(g for words in docs for g in _ngrams(words, n))
        total = max(sum(counts.values()), 1)
        stats[f"distinct_{n}"] = len(counts) / total
        stats[f"top{top}_share_{n}"] = sum(c for _, c in counts.most_common(top)) / total
    unigrams = collections.Counter(w for words in docs for w in words)
    vocabulary = set(unigrams) | set(reference_unigrams)
    ref_total = sum(reference_unigrams.values()) + 0.5 * len(vocabulary)
    total = max(sum(unigrams.values()), 1)
    stats["unigram_kl_to_human"] = sum(
        c / total * math.log((c / total) / ((reference_unigrams[w] + 0.5) / ref_total)) for w, c in unigrams.items()
    )
    return stats


def data_metrics(corpus: Corpus, model0, reference_unigrams) -> dict:
    perplexities = document_perplexities(model0, corpus)
    return {
        "n_documents": int(corpus.doc_ids.max()) + 1,
        "n_tokens": corpus.n_tokens,
        **ngram_stats(corpus_to_texts(corpus), reference_unigrams),
        "gen0_perplexity_mean": float(perplexities.mean()),
        "gen0_perplexity_quantiles": dict(zip(map(str, QUANTILES), np.quantile(perplexities, QUANTILES).tolist())),
    }


# ----------------------------------------------------------------------------- storage for resume


class RunStore:
    """Per-step files under ``out_dir``: checkpoints/NAME.eqx, corpora/NAME.npz, metrics/NAME.json.
    A step is done once its metrics file exists (written last)."""

    def __init__(self, out_dir, preset: Preset):
        self.root = Path(out_dir)
        self.preset = preset
        config_path = self.root / "preset.json"
        if config_path.exists():
            stored = json.loads(config_path.read_text())
            require(stored == preset_dict(preset),
                    f"{self.root} holds a run of another preset; choose another output folder")
        else:
            write_json(config_path, preset_dict(preset))

    def done(self, name) -> dict | None:
        path = self.root / "metrics" / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def load(self, name):
        model = load_checkpoint(self.root / "checkpoints" / f"{name}.eqx", expected=self.preset.model)
        with np.load(self.root / "corpora" / f"{name}.npz") as arrays:
            corpus = Corpus(arrays["rows"], arrays["lengths"], arrays["doc_ids"])
        return model, corpus

    def save(self, name, model, corpus: Corpus, metrics: dict) -> None:
        save_checkpoint(self.root / "checkpoints" / f"{name}.eqx", model)
        with atomic_path(self.root / "corpora" / f"{name}.npz") as tmp:
            np.savez(tmp, rows=corpus.rows, lengths=corpus.lengths, doc_ids=corpus.doc_ids)
        write_json(self.root / "metrics" / f"{name}.json", metrics)


# ----------------------------------------------------------------------------- the experiment


class Experiment:
    def __init__(self, preset: Preset, out_dir, progress=True):
        self.preset, self.progress = preset, progress
        self.store = RunStore(out_dir, preset)
        self.source = MarkovWordSource(preset.n_words, seed=preset.seed, mean_words=preset.mean_words)
        heldout_texts = self.human_texts(preset.n_heldout, stream=-1)
        self.heldout = corpus_from_texts(heldout_texts, preset.model.block_size)
        self.source_probs = self.source.next_token_probs(self.heldout)
        self.reference_unigrams = collections.Counter(w for t in heldout_texts for w in t.split())
        self.model0 = None

    def human_texts(self, n_docs, stream: int) -> list[str]:
        rng = np.random.default_rng([self.preset.seed, 1, stream + 1])
        return self.source.sample_texts(n_docs, rng, self.preset.model.block_size)

    def seed(self, *parts: int) -> int:
        """Training/sampling seed shared by all regimes at a generation (common random numbers)."""
        return int(np.random.default_rng([self.preset.seed, *parts]).integers(2**31))

    def run_step(self, name, make_corpus, train_seed, bar):
        """Train on ``make_corpus()`` unless ``name`` is stored; returns (model, corpus, metrics)."""
        metrics = self.store.done(name)
        if metrics is not None:
            model, corpus = self.store.load(name)
        else:
            corpus, extra = make_corpus()
            model, losses = train(self.preset.model, corpus, self.preset.train, train_seed, inner(self.progress),
                                  desc=name)
            metrics = {
                **extra,
                "final_train_loss": float(losses[-20:].mean()),
                **model_metrics(model, self.heldout, self.source_probs),
                **data_metrics(corpus, model if self.model0 is None else self.model0, self.reference_unigrams),
            }
            self.store.save(name, model, corpus, metrics)
        bar.update(1, note=name)
        return model, corpus, metrics

    def next_corpus(self, regime, generation, model, corpus):
        """Training data of ``generation`` from the previous generation's model and data (``human``
        needs neither: generation 0 is the human regime's first draw)."""
        n, sample_seed = self.preset.n_docs, self.seed(2, generation)
        if regime == "human":
            return corpus_from_texts(self.human_texts(n, stream=generation), self.preset.model.block_size), {}
        if regime == "replace":
            return sample_corpus(model, n, sample_seed), {}
        if regime == "accumulate":
            return Corpus.concat([corpus, sample_corpus(model, n, sample_seed)]), {}
        strategy = STRATEGIES[self.preset.strategy]
        if regime == "toedit_heavy":
            strategy = dataclasses.replace(strategy, up_threshold=self.preset.heavy_up_threshold)
        edited, edits = edit_corpus(model, corpus, strategy, sample_seed)
        return edited, edits.summary()

    def run(self) -> dict:
        p = self.preset
        n_steps = 1 + len(REGIMES) * p.generations + len(p.mixing_shares)
        with Progress(n_steps, f"lm experiment ({p.name})", "run", enabled=self.progress) as bar:
            human0 = functools.partial(self.next_corpus, "human", 0, None, None)
            self.model0, corpus0, metrics0 = self.run_step("gen0", human0, self.seed(1, 0), bar)
            generations = {}
            for regime in REGIMES:
                model, corpus, rows = self.model0, corpus0, [metrics0]
                for g in range(1, p.generations + 1):
                    make = functools.partial(self.next_corpus, regime, g, model, corpus)
                    model, corpus, metrics = self.run_step(f"{regime}_gen{g}", make, self.seed(1, g), bar)
                    rows.append(metrics)
                generations[regime] = rows
            mixing = [self.mixing_step(share, corpus0, bar) for share in p.mixing_shares]
        return {
            "preset": preset_dict(p),
            "source_entropy_per_byte": metrics0["heldout_source_cross_entropy"],
            "generations": generations,
            "mixing": mixing,
        }

    def mixing_step(self, share, corpus0: Corpus, bar) -> dict:
        n = self.preset.n_docs
        n_synthetic = round(share * n)

        def make():
            synthetic = sample_corpus(self.model0, n, self.seed(3))
            parts = (corpus0.select(slice(n - n_synthetic)), synthetic.select(slice(n_synthetic)))
            parts = [c for c in parts if len(c)]
            return Corpus.concat(parts), {"synthetic_share": share}

        _, _, metrics = self.run_step(f"mix_{share:.2f}", make, self.seed(4), bar)
        return metrics


def t_interval(values) -> dict:
    """Mean and 95% Student-t interval of ``values`` (one per seed; a single seed gives a zero-width one)."""
    values = np.asarray(values, float)
    mean = float(values.mean())
    half = 0.0 if len(values) < 2 else float(
        stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))
    return {"mean": mean, "low": mean - half, "high": mean + half}


def summarise(per_seed: list[dict]) -> dict:
    """Per regime and generation: mean and 95% interval over seeds of the excess loss, of the excess loss
    relative to the same seed's generation 0, of the held-out cross-entropy and, for the editing regimes,
    of the realised shares of revised and changed tokens; the same for each mixing share."""
    generations = {}
    for regime in REGIMES:
        rows = []
        for g in range(len(per_seed[0]["generations"][regime])):
            runs = [r["generations"][regime] for r in per_seed]
            row = {
                "excess_loss": t_interval([run[g]["excess_loss"] for run in runs]),
                "relative_excess_loss": t_interval([run[g]["excess_loss"] / run[0]["excess_loss"] for run in runs]),
                "heldout_cross_entropy": t_interval([run[g]["heldout_cross_entropy"] for run in runs]),
            }
            if regime in EDIT_REGIMES and g > 0:
                row["fraction_revised"] = t_interval([run[g]["fraction_revised"] for run in runs])
                row["fraction_changed"] = t_interval([run[g]["fraction_changed"] for run in runs])
            rows.append(row)
        generations[regime] = rows
    mixing = [{"synthetic_share": m["synthetic_share"],
               **{key: t_interval([r["mixing"][i][key] for r in per_seed])
                  for key in ("excess_loss", "heldout_cross_entropy")}}
              for i, m in enumerate(per_seed[0]["mixing"])]
    return {"generations": generations, "mixing": mixing}


def run_experiment(preset: Preset, out_dir, seeds: int = 5, progress=True) -> dict:
    """Run (or resume) the experiment for seeds 0..seeds-1; writes ``results.json`` (every seed's
    metrics, their summary and the theory curves) and the figures into ``out_dir``. A rerun whose results
    equal the stored ``results.json`` keeps the figures already there."""
    require(seeds >= 1, f"--seeds {seeds} must be at least 1")
    per_seed = [Experiment(dataclasses.replace(preset, seed=s), Path(out_dir) / f"seed{s}", progress).run()
                for s in range(seeds)]
    results = {
        "preset": preset_dict(preset),
        "seeds": seeds,
        "source_entropy_per_byte": float(np.mean([r["source_entropy_per_byte"] for r in per_seed])),
        "summary": summarise(per_seed),
        "per_seed": per_seed,
    }
    results["theory"] = plots.theory_curves(results)
    stored = Path(out_dir) / "results.json"
    files = plots.figure_files(out_dir)
    if stored.exists() and stored.read_text() == json_text(results) and all(f.exists() for f in files):
        results["figures"] = [str(f) for f in files if f.suffix == ".png"]  # a rerun with nothing new: they stand
        return results
    write_json(stored, results)
    results["figures"] = plots.write_figures(results, out_dir)
    return results


def generation_table(results: dict) -> str:
    """One line per regime and generation: excess loss and its ratio to generation 0 (mean [95% interval]
    over seeds), the realised edited share, and the linear theory beside the editing regimes."""
    def cell(x, digits=3):
        return f"{x['mean']:.{digits}f} [{x['low']:.{digits}f}, {x['high']:.{digits}f}]"

    lines = [f"{'regime':>12} {'gen':>3}  {'excess KL (nats/byte)':>25}  {'KL / gen 0':>25}  "
             f"{'edited share':>12}  {'theory perturb':>14}  {'theory resample':>15}"]
    theory = results["theory"]
    for regime, rows in results["summary"]["generations"].items():
        for g, row in enumerate(rows):
            share = f"{row['fraction_revised']['mean']:12.3f}" if "fraction_revised" in row else " " * 12
            if regime in EDIT_REGIMES:
                predicted = f"{theory[regime]['perturb'][g]:14.3f}  {theory[regime]['resample'][g]:15.3f}"
            elif regime in ("replace", "accumulate"):
                predicted = f"{theory[regime][g]:14.3f}"
            else:
                predicted = ""
            lines.append(f"{regime:>12} {g:>3}  {cell(row['excess_loss']):>25}  "
                         f"{cell(row['relative_excess_loss']):>25}  {share}  {predicted}".rstrip())
    return "\n".join(lines)


def run_default(out_dir, progress=True) -> dict:
    """The tiny-preset experiment, one seed (CPU, a few minutes): JSON and figures into ``out_dir``."""
    return run_experiment(PRESETS["tiny"], out_dir, seeds=1, progress=progress)

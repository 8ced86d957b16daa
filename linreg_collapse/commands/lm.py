"""``linreg-collapse lm``: train a small language model, edit a corpus with ToEdit, run the experiments.

    linreg-collapse lm train --data corpus.jsonl --out model.eqx [--preset tiny] [--steps N] [--seed S]
    linreg-collapse lm edit --model model.eqx --in data.jsonl --out edited.jsonl --strategy up_revise
    linreg-collapse lm experiment --preset tiny --out results/lm
"""

from __future__ import annotations

import dataclasses
import json
import sys

from ..errors import require
from ..progress import add_progress_argument


def register(subparsers) -> None:
    lm = subparsers.add_parser("lm", help="language-model ToEdit module: train, edit, experiment")
    commands = lm.add_subparsers(dest="lm_command", required=True, metavar="LM_COMMAND")

    train = commands.add_parser("train", help="train a model on a corpus (or on the built-in human source)")
    train.add_argument("--data", help="corpus: .jsonl with a 'text' field per line, or plain text "
                       "(default: the built-in human source)")
    train.add_argument("--out", required=True, help="checkpoint to write")
    train.add_argument("--preset", default="tiny", help="model and training preset (tiny|small)")
    train.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    train.add_argument("--seed", type=int, default=0)
    add_progress_argument(train)
    train.set_defaults(run=run_train)

    edit = commands.add_parser("edit", help="edit a corpus token by token with a model (ToEdit)")
    edit.add_argument("--model", required=True, help="checkpoint written by 'lm train' or 'lm experiment'")
    edit.add_argument("--in", dest="input", required=True, help="corpus: .jsonl with a 'text' field, or plain text")
    edit.add_argument("--out", required=True, help="edited corpus (.jsonl)")
    edit.add_argument("--strategy", default="up_revise", help="up_revise | low_drop_up_revise | filtering")
    edit.add_argument("--up-threshold", type=float, help="revise tokens with p above this (default 0.99)")
    edit.add_argument("--low-threshold", type=float, help="drop tokens with p below this (default 0.001)")
    edit.add_argument("--beta", type=float, help="temperature of the candidate softmax")
    edit.add_argument("--top-k", type=int, help="number of candidates (default 8)")
    edit.add_argument("--seed", type=int, default=0)
    edit.add_argument("--stats", help="also write per-document edit fractions to this JSON file")
    edit.set_defaults(run=run_edit)

    experiment = commands.add_parser("experiment", help="iterative regimes and mixing experiment (resumable)")
    experiment.add_argument("--preset", default="tiny", help="tiny (CPU, minutes) | small (GPU)")
    experiment.add_argument("--out", default="results/lm", help="output folder; rerunning continues a run")
    add_progress_argument(experiment)
    experiment.set_defaults(run=run_experiment)


def _preset(name):
    from ..lm.experiment import PRESETS

    require(name in PRESETS, f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def run_train(args) -> int:
    import numpy as np

    from ..lm.data import MarkovWordSource, corpus_from_texts, read_texts
    from ..lm.model import save_checkpoint
    from ..lm.train import train

    preset = _preset(args.preset)
    require(args.steps is None or args.steps > 0, f"--steps {args.steps} must be positive")
    config = preset.train if args.steps is None else dataclasses.replace(
        preset.train, steps=args.steps, warmup_steps=min(preset.train.warmup_steps, args.steps // 10))
    if args.data is None:
        source = MarkovWordSource(preset.n_words, seed=preset.seed, mean_words=preset.mean_words)
        texts = source.sample_texts(preset.n_docs, np.random.default_rng(args.seed), preset.model.block_size)
    else:
        texts = read_texts(args.data)
    corpus = corpus_from_texts(texts, preset.model.block_size)
    model, losses = train(preset.model, corpus, config, args.seed, progress=not args.no_progress)
    save_checkpoint(args.out, model)
    print(f"trained on {corpus.n_tokens} tokens, final loss {losses[-20:].mean():.4f} nats/byte -> {args.out}")
    return 0


def run_edit(args) -> int:
    from ..io import write_json
    from ..lm.data import corpus_from_texts, corpus_to_texts, read_texts, write_jsonl
    from ..lm.model import load_checkpoint
    from ..lm.toedit import edit_corpus, make_strategy

    strategy = make_strategy(args.strategy, args.up_threshold, args.low_threshold, args.beta, args.top_k)
    texts = read_texts(args.input)
    model = load_checkpoint(args.model)
    corpus = corpus_from_texts(texts, model.config.block_size)
    result = edit_corpus(model, corpus, strategy, args.seed)
    summary = result.summary(corpus.target_mask)
    write_jsonl(args.out, corpus_to_texts(result.corpus))
    if args.stats:
        write_json(args.stats, {
            "strategy": dataclasses.asdict(strategy),
            **summary,
            "documents": [
                {"fraction_revised": r, "fraction_changed": c, "fraction_dropped": d}
                for r, c, d in zip(result.doc_fraction_revised.tolist(), result.doc_fraction_changed.tolist(),
                                   result.doc_fraction_dropped.tolist())
            ],
        })
    print(json.dumps({"documents": len(texts), "tokens": corpus.n_tokens, **summary}), file=sys.stderr)
    return 0


def run_experiment(args) -> int:
    import jax

    from ..lm.experiment import run_experiment as run

    preset = _preset(args.preset)
    print(f"lm experiment {preset.name}: JAX backend {jax.default_backend()}, output {args.out}", file=sys.stderr)
    results = run(preset, args.out, progress=not args.no_progress)
    for regime, rows in results["generations"].items():
        print(f"{regime:>10}: excess loss by generation " + " ".join(f"{g['excess_loss']:.3f}" for g in rows))
    print("written: " + ", ".join([f"{args.out}/results.json", *results["figures"]]))
    return 0

"""``linreg-collapse lm``: train a small language model, edit a corpus with ToEdit, run the experiments.

    linreg-collapse lm train --data corpus.jsonl --out model.eqx [--preset tiny] [--steps N] [--seed S]
    linreg-collapse lm edit --prior builtin:model.eqx|hf:DIR --in data.jsonl --out edited.jsonl --strategy up_revise
    linreg-collapse lm experiment --preset quick --seeds 5 --out results/lm
"""

from __future__ import annotations

import dataclasses
import json
import sys

from ..errors import require
from ..progress import add_progress_argument

INPUT_RULES = ("Input: a .jsonl file holds one JSON object with a string field 'text' per line (blank lines "
               "skipped); any other file is plain UTF-8 text whose documents are separated by blank lines.")


def register(subparsers) -> None:
    lm = subparsers.add_parser("lm", help="language-model ToEdit module: train, edit, experiment")
    commands = lm.add_subparsers(dest="lm_command", required=True, metavar="LM_COMMAND")

    train = commands.add_parser("train", help="train a model on a corpus (or on the built-in human source)",
                                description="Train the byte-level transformer. " + INPUT_RULES)
    train.add_argument("--data", help="corpus: .jsonl with a 'text' field per line, or plain text "
                       "(default: the built-in human source)")
    train.add_argument("--out", required=True, help="checkpoint to write")
    train.add_argument("--preset", default="tiny", help="model and training preset (tiny|small)")
    train.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    train.add_argument("--seed", type=int, default=0)
    add_progress_argument(train)
    train.set_defaults(run=run_train)

    edit = commands.add_parser(
        "edit", help="edit a corpus token by token with a prior model (ToEdit)",
        description="Score every token of every document with a prior (teacher forcing, full prefix up to the "
                    "prior's context, longer documents in overlapping windows) and apply a ToEdit strategy. "
                    + INPUT_RULES + " Writes one {\"text\": ...} line per document, streamed and resumable by "
                    "line (a rerun continues an interrupted one); prints a JSON summary on stdout.")
    edit.add_argument("--prior", required=True,
                      help="builtin:MODEL.eqx (a checkpoint of 'lm train' or 'lm experiment') or hf:DIR (a local "
                           "Hugging Face causal LM with its tokenizer; needs the [hf] extra)")
    edit.add_argument("--in", dest="input", required=True, help="corpus: .jsonl with a 'text' field, or plain text")
    edit.add_argument("--out", required=True, help="edited corpus (.jsonl)")
    edit.add_argument("--strategy", default="up_revise", help="up_revise | low_drop_up_revise | filtering")
    edit.add_argument("--up-threshold", type=float,
                      help="revise tokens with p above this (default 0.99; not for filtering)")
    edit.add_argument("--low-threshold", type=float,
                      help="drop tokens with p below this (default 0.001; not for up_revise)")
    edit.add_argument("--beta", type=float, help="temperature of the candidate softmax")
    edit.add_argument("--top-k", type=int, help="number of candidates (default 8)")
    edit.add_argument("--seed", type=int, default=0)
    edit.add_argument("--limit", type=int, help="edit only the first N documents")
    edit.add_argument("--stride", type=int,
                      help="tokens between the starts of consecutive windows of a long document (default: half "
                           "the context); every token keeps at least context + 1 - stride tokens of context")
    edit.add_argument("--context", type=int,
                      help="longest prefix the prior reads (default: the model's maximum length; the official "
                           "script used 2048)")
    edit.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default 8)")
    edit.add_argument("--stats", help="also write per-document edit fractions to this JSON file")
    add_progress_argument(edit)
    edit.set_defaults(run=run_edit)

    experiment = commands.add_parser("experiment", help="iterative regimes and mixing experiment (resumable)")
    experiment.add_argument("--preset", default="tiny",
                            help="quick (CPU, several seeds in minutes) | tiny (CPU) | small (GPU)")
    experiment.add_argument("--seeds", type=int, default=5,
                            help="independent runs (seeds 0..N-1) for means and 95%% intervals (default 5)")
    experiment.add_argument("--out", default="results/lm", help="output folder; rerunning continues a run")
    add_progress_argument(experiment)
    experiment.set_defaults(run=run_experiment)


def _preset(name):
    from ..lm.experiment import PRESETS

    require(name in PRESETS, f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def run_train(args) -> int:
    import numpy as np

    from ..io import check_writable
    from ..lm.data import MarkovWordSource, corpus_from_texts, read_texts
    from ..lm.model import save_checkpoint
    from ..lm.scoring import check_memory
    from ..lm.train import train

    preset = _preset(args.preset)
    require(args.steps is None or args.steps > 0, f"--steps {args.steps} must be positive")
    check_writable("--out", args.out)
    check_memory(preset.train.batch_size, preset.model.block_size, preset.model.vocab_size)
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
    from ..io import check_writable
    from ..lm.scoring import check_memory
    from ..lm.stream import edit_file, load_prior
    from ..lm.toedit import make_strategy

    require(args.limit is None or args.limit > 0, f"--limit {args.limit} must be positive")
    require(args.batch_size > 0, f"--batch-size {args.batch_size} must be positive")
    require(args.context is None or args.context > 0, f"--context {args.context} must be positive")
    make_strategy(args.strategy, args.up_threshold, args.low_threshold, args.beta, args.top_k)
    check_writable("--out", args.out)
    if args.stats:
        check_writable("--stats", args.stats)
    prior = load_prior(args.prior, args.batch_size, args.context)
    strategy = make_strategy(args.strategy, args.up_threshold, args.low_threshold, args.beta, args.top_k,
                             vocab_size=prior.vocab_size)
    stride = prior.context // 2 if args.stride is None else args.stride
    require(1 <= stride <= prior.context, f"--stride {stride} must be in [1, the context {prior.context}]")
    check_memory(args.batch_size, prior.context, prior.vocab_size)
    settings = {"prior": args.prior, "input": str(args.input), "strategy": dataclasses.asdict(strategy),
                "seed": args.seed, "limit": args.limit, "context": prior.context, "stride": stride}
    summary = edit_file(prior, settings, args.input, args.out, strategy, args.seed, args.limit, stride,
                        progress=not args.no_progress, stats_path=args.stats)
    print(json.dumps(summary))
    return 0


def run_experiment(args) -> int:
    import jax

    from ..io import check_writable
    from ..lm.experiment import generation_table
    from ..lm.experiment import run_experiment as run
    from ..lm.scoring import check_memory

    preset = _preset(args.preset)
    require(args.seeds >= 1, f"--seeds {args.seeds} must be at least 1")
    check_writable("--out", f"{args.out}/results.json")
    check_memory(preset.train.batch_size, preset.model.block_size, preset.model.vocab_size)
    print(f"lm experiment {preset.name}, {args.seeds} seeds: JAX backend {jax.default_backend()}, output {args.out}",
          file=sys.stderr)
    results = run(preset, args.out, seeds=args.seeds, progress=not args.no_progress)
    print(generation_table(results))
    print("written: " + ", ".join([f"{args.out}/results.json", f"{args.out}/captions.md", *results["figures"]]))
    return 0

"""``--prior hf:DIR`` with a tiny randomly initialised GPT-2 and a byte-level BPE tokenizer trained here
(nothing downloaded): the edit runs end to end, a document six times longer than the context keeps all
its text, and windowed batched scores equal direct full-prefix scores."""

import importlib.util
import json

import numpy as np
import pytest

from linreg_collapse.cli import main
from linreg_collapse.lm.data import read_texts, write_jsonl
from linreg_collapse.lm.scoring import score_documents, windows
from linreg_collapse.lm.stream import load_prior

# Checked without importing them (torch alone takes seconds): only the worker that runs these tests imports it.
MISSING = [name for name in ("transformers", "torch", "tokenizers") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} (pip install -e '.[hf]')")

CONTEXT = 32
WORDS = ["the", "cat", "sat", "on", "a", "mat", "café", "naïve", "runs", "dog", "and", "then", ","]


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A 2-layer GPT-2 (width 16, 32 positions) and a byte-level BPE tokenizer trained on generated text."""
    import tokenizers
    import torch
    import transformers

    rng = np.random.default_rng(0)
    bpe = tokenizers.Tokenizer(tokenizers.models.BPE())
    bpe.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"],
                                             initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator([sentence(rng, 20) for _ in range(300)], trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>",
                                                     model_max_length=CONTEXT)
    config = transformers.GPT2Config(vocab_size=len(tokenizer), n_positions=CONTEXT, n_embd=16, n_layer=2,
                                     n_head=2, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny_gpt2")
    transformers.GPT2LMHeadModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def prior(model_dir):
    return load_prior(f"hf:{model_dir}", batch_size=4)


def test_edit_with_an_hf_prior_runs_and_keeps_long_documents_whole(tmp_path, model_dir, prior, capsys):
    """up_revise never fires on a random model (no p > 0.99): every document, one of them six contexts
    long, comes back with exactly its text. filtering at the median p drops about half the tokens."""
    rng = np.random.default_rng(1)
    texts = [sentence(rng, 5), sentence(rng, 7 * CONTEXT), "x"]
    assert len(prior.encode(texts[1])) >= 6 * CONTEXT
    corpus, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(corpus, texts)
    base = ["lm", "edit", "--prior", f"hf:{model_dir}", "--in", str(corpus), "--out", str(out), "--no-progress"]
    assert main(base) == 0
    summary = json.loads(capsys.readouterr().out)
    assert read_texts(out) == texts
    assert summary["tokens"] == sum(len(prior.encode(t)) - 1 for t in texts) and summary["fraction_revised"] == 0
    scores = score_documents(prior, [prior.encode(t) for t in texts], top_k=8)
    median = float(np.median(np.exp(np.concatenate([s.target_log_probs[1:] for s in scores]))))
    assert main([*base, "--strategy", "filtering", "--low-threshold", str(median)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert 0.3 < summary["fraction_dropped"] < 0.7 and len(read_texts(out)) <= 3


def test_windowed_scores_equal_direct_full_prefix_scores(prior):
    """A long document batched with a short one (padding): where the prefix fits the context, each
    token's log-prob equals a direct unpadded pass over its whole prefix; beyond, a direct pass over its
    window (at least context + 1 - stride tokens of context). Tolerance 2e-5 (float32, different
    batch shapes)."""
    rng = np.random.default_rng(2)
    docs = [prior.encode(sentence(rng, 3 * CONTEXT)), prior.encode(sentence(rng, 4))]
    stride = 12
    scores = score_documents(prior, docs, top_k=8, stride=stride)

    import torch

    def direct(tokens):
        with torch.no_grad():
            logits = prior.model(input_ids=torch.as_tensor(tokens[None, :-1])).logits[0]
        return torch.log_softmax(logits.float(), -1)[torch.arange(len(tokens) - 1), torch.as_tensor(tokens[1:])]

    long, short = docs
    full = direct(long[: CONTEXT + 1]).numpy()
    np.testing.assert_allclose(scores[0].target_log_probs[1 : CONTEXT + 1], full, atol=2e-5)
    np.testing.assert_allclose(scores[1].target_log_probs[1:], direct(short).numpy(), atol=2e-5)
    for start, stop, first in windows(len(long), CONTEXT, stride)[1:]:
        window = direct(long[start:stop]).numpy()[first - start - 1 :]
        np.testing.assert_allclose(scores[0].target_log_probs[first:stop], window, atol=2e-5)
    top = scores[0].top_log_probs[1:]
    assert (np.diff(top, axis=1) <= 0).all() and (top[:, :1] >= scores[0].target_log_probs[1:, None] - 1e-6).all()

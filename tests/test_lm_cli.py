"""`linreg-collapse lm ...`: train, edit and experiment end to end on micro settings; bad input."""

import dataclasses
import json

import jax
import pytest

from linreg_collapse.cli import main
from linreg_collapse.errors import InputError
from linreg_collapse.lm import experiment
from linreg_collapse.lm.data import VOCAB_SIZE, read_texts, write_jsonl
from linreg_collapse.lm.model import ModelConfig, Transformer, save_checkpoint
from linreg_collapse.lm.train import TrainConfig

MICRO = ModelConfig(VOCAB_SIZE, block_size=16, d_model=16, n_layers=1, n_heads=2)
MICRO_PRESET = experiment.Preset(
    "micro", MICRO, TrainConfig(steps=40, batch_size=8, learning_rate=1e-2, warmup_steps=4),
    n_words=10, mean_words=3.0, n_docs=24, n_heldout=16, generations=2, mixing_shares=(0.0, 0.5, 1.0),
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "micro.eqx"
    save_checkpoint(path, Transformer(MICRO, jax.random.PRNGKey(0)))
    return path


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "in.jsonl"
    write_jsonl(path, ["hello world", "a longer document that spans more than one row of sixteen bytes", "é"])
    return path


def test_edit_writes_the_edited_corpus_and_stats(tmp_path, checkpoint, corpus_file):
    out, stats = tmp_path / "out.jsonl", tmp_path / "stats.json"
    code = main(["lm", "edit", "--model", str(checkpoint), "--in", str(corpus_file), "--out", str(out),
                 "--strategy", "low_drop_up_revise", "--up-threshold", "0.02", "--low-threshold", "0.001",
                 "--stats", str(stats)])
    assert code == 0
    assert len(read_texts(out)) == 3
    written = json.loads(stats.read_text())
    assert len(written["documents"]) == 3 and 0 <= written["fraction_revised"] <= 1
    assert written["strategy"]["up_threshold"] == 0.02


@pytest.mark.parametrize("args, message", [
    (["--strategy", "sharpen"], "unknown strategy 'sharpen'"),
    (["--up-threshold", "1.5"], r"up threshold 1.5 is outside \(0, 1\)"),
    (["--strategy", "filtering", "--low-threshold", "0"], r"low threshold 0.0 is outside \(0, 1\)"),
])
def test_bad_strategy_is_one_line_exit_2_and_writes_nothing(tmp_path, checkpoint, corpus_file, capsys, args, message):
    out = tmp_path / "out.jsonl"
    code = main(["lm", "edit", "--model", str(checkpoint), "--in", str(corpus_file), "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("linreg-collapse: error: ")
    assert __import__("re").search(message, err)
    assert not out.exists() and list(tmp_path.iterdir()) == [corpus_file]


@pytest.mark.parametrize("content, message", [
    ('{"text": "a"}\n{"text": \n', "bad.jsonl:2: malformed JSON"),
    ("", "the corpus is empty"),
])
def test_bad_corpus_is_one_line_exit_2(tmp_path, checkpoint, capsys, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    out = tmp_path / "out.jsonl"
    assert main(["lm", "edit", "--model", str(checkpoint), "--in", str(bad), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_bad_checkpoint_is_one_line_exit_2(tmp_path, checkpoint, corpus_file, capsys):
    broken = tmp_path / "broken.eqx"
    broken.write_bytes(checkpoint.read_bytes()[:-64])
    out = tmp_path / "out.jsonl"
    assert main(["lm", "edit", "--model", str(broken), "--in", str(corpus_file), "--out", str(out)]) == 2
    assert "does not match the model" in capsys.readouterr().err and not out.exists()


def test_experiment_writes_results_resumes_and_is_deterministic(tmp_path, monkeypatch):
    first = experiment.run_experiment(MICRO_PRESET, tmp_path / "a", progress=False)
    assert set(first["generations"]) == set(experiment.REGIMES)
    assert all(len(rows) == 3 for rows in first["generations"].values())
    assert [m["synthetic_share"] for m in first["mixing"]] == [0.0, 0.5, 1.0]
    toedit = first["generations"]["toedit"]
    assert all(0 <= g["fraction_revised"] <= 1 for g in toedit[1:])
    assert len(first["theory"]["replace"]) == 3 and first["theory"]["replace"][-1] == pytest.approx(3.0)
    assert json.loads((tmp_path / "a" / "results.json").read_text())["generations"] == first["generations"]
    assert all((tmp_path / "a" / name).exists() for name in first["figures"])
    # Same seed, fresh folder, fewer steps: the same numbers for the steps both runs have.
    shorter = dataclasses.replace(MICRO_PRESET, generations=1, mixing_shares=(1.0,))
    again = experiment.run_experiment(shorter, tmp_path / "b", progress=False)
    assert again["generations"] == {regime: rows[:2] for regime, rows in first["generations"].items()}
    assert again["mixing"] == first["mixing"][-1:]

    # Resume: nothing is retrained.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished generation was retrained")

    monkeypatch.setattr(experiment, "train", no_training)
    assert experiment.run_experiment(MICRO_PRESET, tmp_path / "a", progress=False)["mixing"] == first["mixing"]
    with pytest.raises(InputError, match="holds a run of another preset"):
        experiment.run_experiment(dataclasses.replace(MICRO_PRESET, seed=1), tmp_path / "a", progress=False)


def test_unknown_preset_is_exit_2(tmp_path, capsys):
    assert main(["lm", "experiment", "--preset", "huge", "--out", str(tmp_path)]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU (JAX sees none)")
def test_small_preset_trains_on_gpu():
    import numpy as np

    from linreg_collapse.lm.data import MarkovWordSource, corpus_from_texts
    from linreg_collapse.lm.train import train

    preset = experiment.PRESETS["small"]
    source = MarkovWordSource(preset.n_words, seed=0, mean_words=preset.mean_words)
    corpus = corpus_from_texts(source.sample_texts(256, np.random.default_rng(0), preset.model.block_size),
                               preset.model.block_size)
    _, losses = train(preset.model, corpus, dataclasses.replace(preset.train, steps=50, warmup_steps=5), seed=0)
    assert losses[-5:].mean() < losses[:5].mean()


def test_train_then_edit_plain_text(tmp_path, capsys):
    text = tmp_path / "corpus.txt"
    text.write_text("first paragraph of text\n\nsecond one\n")
    ckpt = tmp_path / "m.eqx"
    assert main(["lm", "train", "--data", str(text), "--out", str(ckpt), "--steps", "2", "--no-progress"]) == 0
    assert "trained on 33 tokens" in capsys.readouterr().out
    out = tmp_path / "edited.jsonl"
    assert main(["lm", "edit", "--model", str(ckpt), "--in", str(text), "--out", str(out), "--strategy", "filtering"]) == 0
    assert len(read_texts(out)) == 2

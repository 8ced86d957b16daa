"""`linreg-collapse lm ...`: train, edit and experiment end to end on micro settings; bad input."""

import dataclasses
import json

import jax
import numpy as np
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
    n_words=10, mean_words=3.0, n_docs=24, n_heldout=16, generations=1, mixing_shares=(1.0,),
    heavy_up_threshold=0.05,  # a micro model is rarely sure of a byte: 0.05 still edits a clear share
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


def edit(checkpoint, corpus_file, out, *args):
    return main(["lm", "edit", "--prior", f"builtin:{checkpoint}", "--in", str(corpus_file), "--out", str(out),
                 "--no-progress", *args])


def test_edit_writes_the_edited_corpus_stats_and_a_json_summary(tmp_path, checkpoint, corpus_file, capsys):
    out, stats = tmp_path / "out.jsonl", tmp_path / "stats.json"
    assert edit(checkpoint, corpus_file, out, "--strategy", "low_drop_up_revise", "--up-threshold", "0.02",
                "--low-threshold", "0.001", "--stats", str(stats)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == 3 and summary["tokens"] == sum(len(t.encode()) for t in read_texts(corpus_file))
    assert len(read_texts(out)) == 3 and not list(tmp_path.glob("*.partial*"))
    written = json.loads(stats.read_text())
    assert len(written["documents"]) == 3 and 0 <= written["fraction_revised"] <= 1
    assert written["strategy"]["up_threshold"] == 0.02 and written["strategy"]["top_k"] == 8


def test_edit_resumes_by_line_and_honours_limit(tmp_path, checkpoint, corpus_file, capsys):
    """An interrupted run (two lines written, the second cut short) continues to the same file as an
    uninterrupted run; --limit edits only the first documents."""
    whole, resumed = tmp_path / "whole.jsonl", tmp_path / "resumed.jsonl"
    args = ("--up-threshold", "0.004", "--seed", "5")
    assert edit(checkpoint, corpus_file, whole, *args) == 0
    lines = whole.read_text().splitlines(keepends=True)
    settings = dict(prior=f"builtin:{checkpoint}", input=str(corpus_file), seed=5, limit=None, context=16,
                    stride=8,
                    strategy=dict(name="up_revise", up_threshold=0.004, low_threshold=None, beta=1.5, top_k=8))
    (tmp_path / "resumed.jsonl.partial.json").write_text(json.dumps(settings))
    (tmp_path / "resumed.jsonl.partial").write_text(lines[0] + lines[1][:5])
    (tmp_path / "resumed.jsonl.partial.counts").write_text("10 1 1 0\n")
    assert edit(checkpoint, corpus_file, resumed, *args) == 0
    assert resumed.read_text() == whole.read_text()
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["documents"] == 3
    limited = tmp_path / "limited.jsonl"
    assert edit(checkpoint, corpus_file, limited, *args, "--limit", "2") == 0
    assert limited.read_text().splitlines() == whole.read_text().splitlines()[:2]


@pytest.mark.parametrize("args, message", [
    (["--strategy", "sharpen"], "unknown strategy 'sharpen'"),
    (["--up-threshold", "1.5"], r"up threshold 1.5 is outside \(0, 1\)"),
    (["--strategy", "filtering", "--low-threshold", "0"], r"low threshold 0.0 is outside \(0, 1\)"),
    (["--strategy", "filtering", "--up-threshold", "0.9"], "--up-threshold does not apply to strategy 'filtering'"),
    (["--low-threshold", "0.01"], "--low-threshold does not apply to strategy 'up_revise'"),
    (["--strategy", "low_drop_up_revise", "--low-threshold", "0.999", "--up-threshold", "0.5"],
     "must be below the up threshold"),
    (["--limit", "0"], "--limit 0 must be positive"),
    (["--stride", "99"], r"--stride 99 must be in \[1, the context 16\]"),
    (["--context", "8", "--stride", "9"], r"--stride 9 must be in \[1, the context 8\]"),
    (["--context", "0"], "--context 0 must be positive"),
    (["--batch-size", "100000000"], "GiB for the log-probabilities"),
])
def test_bad_edit_flags_are_one_line_exit_2_and_write_nothing(tmp_path, checkpoint, corpus_file, capsys, args,
                                                              message):
    out = tmp_path / "out.jsonl"
    code = edit(checkpoint, corpus_file, out, *args)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("linreg-collapse: error: ")
    assert __import__("re").search(message, err)
    assert not out.exists() and list(tmp_path.iterdir()) == [corpus_file]


@pytest.mark.parametrize("command", ["train", "edit"])
def test_unwritable_out_is_refused_before_any_work(tmp_path, checkpoint, corpus_file, capsys, command):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "sub" / "out"  # its parent cannot be created: a file is in the way
    argv = (["lm", "train", "--data", str(corpus_file), "--out", str(out), "--steps", "100000"] if command == "train"
            else ["lm", "edit", "--prior", "builtin:/missing.eqx", "--in", str(corpus_file), "--out", str(out)])
    assert main(argv) == 2  # the missing prior would fail later: --out is checked first
    assert capsys.readouterr().err.startswith(f"linreg-collapse: error: --out '{out}'")


@pytest.mark.parametrize("content, message", [
    ('{"text": "a"}\n{"text": \n', "bad.jsonl:2: malformed JSON"),
    ("", "the corpus is empty"),
])
def test_bad_corpus_is_one_line_exit_2(tmp_path, checkpoint, capsys, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    out = tmp_path / "out.jsonl"
    assert edit(checkpoint, bad, out) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_bad_checkpoint_is_one_line_exit_2(tmp_path, checkpoint, corpus_file, capsys):
    broken = tmp_path / "broken.eqx"
    broken.write_bytes(checkpoint.read_bytes()[:-64])
    out = tmp_path / "out.jsonl"
    assert edit(broken, corpus_file, out) == 2
    assert "does not match the model" in capsys.readouterr().err and not out.exists()


def test_experiment_writes_results_over_seeds_resumes_and_is_deterministic(tmp_path, monkeypatch):
    first = experiment.run_experiment(MICRO_PRESET, tmp_path / "a", seeds=2, progress=False)
    summary = first["summary"]
    assert set(summary["generations"]) == set(experiment.REGIMES) and first["seeds"] == 2
    assert all(len(rows) == 2 for rows in summary["generations"].values())
    for regime in experiment.EDIT_REGIMES:
        share = summary["generations"][regime][1]["fraction_revised"]
        assert 0 <= share["mean"] <= 1 and share["low"] <= share["mean"] <= share["high"]
    heavy, paper = (summary["generations"][r][1]["fraction_revised"]["mean"] for r in ("toedit_heavy", "toedit"))
    assert heavy > paper
    excess = [run["generations"]["replace"][1]["excess_loss"] for run in first["per_seed"]]
    interval = summary["generations"]["replace"][1]["excess_loss"]
    assert interval["mean"] == pytest.approx(np.mean(excess)) and interval["low"] < min(excess)
    assert first["theory"]["replace"] == pytest.approx([1.0, 2.0])
    assert first["theory"]["toedit"]["perturb"][1] == pytest.approx(1 + paper)
    assert json.loads((tmp_path / "a" / "results.json").read_text())["summary"] == json.loads(json.dumps(summary))
    assert all((tmp_path / "a" / name).exists() for name in first["figures"])
    assert "lm_excess_vs_edit_share.png" in (tmp_path / "a" / "captions.md").read_text()
    table = experiment.generation_table(first)
    assert len(table.splitlines()) == 1 + 2 * len(experiment.REGIMES)
    # Seed 0 alone, in a fresh folder: the same numbers as seed 0 of the two-seed run.
    again = experiment.Experiment(dataclasses.replace(MICRO_PRESET, seed=0), tmp_path / "b" / "seed0", False).run()
    assert again == first["per_seed"][0]

    # Resume: nothing is retrained, and the figures of unchanged results are not redrawn.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished generation was retrained")

    def no_drawing(*args, **kwargs):
        raise AssertionError("the figures of unchanged results were redrawn")

    monkeypatch.setattr(experiment, "train", no_training)
    monkeypatch.setattr(experiment.plots, "write_figures", no_drawing)
    resumed = experiment.run_experiment(MICRO_PRESET, tmp_path / "a", seeds=2, progress=False)
    assert resumed["summary"] == summary and resumed["figures"] == first["figures"]
    (tmp_path / "a" / "lm_mixing.png").unlink()  # negative control: a missing figure is drawn again
    with pytest.raises(AssertionError, match="redrawn"):
        experiment.run_experiment(MICRO_PRESET, tmp_path / "a", seeds=2, progress=False)
    with pytest.raises(InputError, match="holds a run of another preset"):
        experiment.run_experiment(dataclasses.replace(MICRO_PRESET, n_docs=20), tmp_path / "a", progress=False)


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
    assert edit(ckpt, text, out, "--strategy", "filtering") == 0
    assert len(read_texts(out)) == 2

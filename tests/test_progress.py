"""Progress off a terminal: plain lines, one per finished step (at most MAX_LOG_LINES), nothing when disabled."""

from __future__ import annotations

from linreg_collapse import progress
from linreg_collapse.progress import MAX_LOG_LINES, Progress, track


def test_one_plain_line_per_step_when_stderr_is_not_a_terminal(capsys):
    assert list(track(["a", "b", "c"], "figures", "figure")) == ["a", "b", "c"]
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" (")[0] for line in lines] == [f"figures: {i}/3 figures done" for i in (1, 2, 3)]
    assert lines[-1].endswith(": c")
    assert "\r" not in "".join(lines) and "\x1b" not in "".join(lines)  # no redraws, no cursor escapes


def test_many_steps_write_at_most_max_log_lines_and_always_the_last(capsys):
    with Progress(1000, "train", "step") as bar:
        for _ in range(1000):
            bar.update()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) <= MAX_LOG_LINES and lines[-1].startswith("train: 1000/1000 steps done")


def test_disabled_writes_nothing(capsys):
    list(track(range(5), "x", enabled=False))
    with Progress(3, "y", enabled=False, initial=1) as bar:
        bar.update(2)
    assert capsys.readouterr().err == ""


def test_a_stream_of_unknown_length_logs_counts_at_most_every_log_interval(capsys, monkeypatch):
    with Progress(None, "lm edit", "doc", initial=4) as bar:
        for _ in range(50):
            bar.update(8)  # within one interval: no line
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "LOG_HEARTBEAT_SECONDS", 0.0)
    with Progress(None, "lm edit", "doc", initial=4) as bar:
        bar.update(8)
    assert capsys.readouterr().err.startswith("lm edit: 12 docs done (")

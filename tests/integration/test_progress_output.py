"""What a user watches: a real short search's output, once on a terminal (a pseudo-terminal) and once through a pipe
(CI, `docker compose exec -T`, a log file); Tune's table only with `--verbose`."""

from __future__ import annotations

import contextlib
import os
import re
import threading

import pytest

pytestmark = pytest.mark.integration
TUNES_OWN = ("== Status ==", "Result logdir", "Tuner.restore", "Current best trial", "+-----", "num_stopped")


def run_through(kind: str, tmp_path, *flags: str) -> str:
    """Run `search/run.py`'s main in this process (the session's Ray) with stdout on a pty or a pipe; what it read."""
    from search.run import main

    master, follower = os.openpty() if kind == "pty" else os.pipe()
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # a pty's reader gets EIO once the other side is closed
                break
            if not data:
                break
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    argv = ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--storage-path", str(tmp_path / "ray_results")]
    argv += ["--experiment", f"it-progress-{kind}", "--num-samples", "6", "--cv-folds", "2", "--models", "knn,svm"]
    with open(follower, "w", buffering=1, closefd=True) as out, contextlib.redirect_stdout(out):
        assert out.isatty() is (kind == "pty")
        code = main([*argv, "--warm-start", "off", *flags])
    reader.join(timeout=10)
    os.close(master)
    assert code == 0
    return b"".join(chunks).decode()


@pytest.fixture
def ray_and_quiet(ray_session, quiet_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)


def test_on_a_terminal_one_line_is_updated_in_place(ray_and_quiet, tmp_path, capfd):
    text = run_through("pty", tmp_path)
    said = text + capfd.readouterr().err
    updates = re.findall(r"\r(\d+/6 (?:finished|done)[^\r\n]*)", text)
    assert len(updates) >= 2, text[-2000:]  # rewritten at least once, with a carriage return
    assert updates[-1].startswith(("6/6 finished, 0 running, 0 failed | best val_accuracy", "6/6 done, 0 running"))
    assert "\n6/6 finished" not in text and "\ntrials 6/6" not in text, "on a terminal the line is not repeated below"
    assert not [own for own in TUNES_OWN if own in said], said[-3000:]
    assert "best trials of search" in text and "ended: all 6 trials ran" in text


def test_through_a_pipe_plain_lines_at_most_every_few_seconds(ray_and_quiet, tmp_path, capfd):
    from search.searching.progress import PIPE_EVERY_S

    text = run_through("pipe", tmp_path)
    said = text + capfd.readouterr().err
    assert "\r" not in text and "\x1b[" not in text
    lines = [line for line in text.splitlines() if line.startswith("trials ")]
    assert lines and lines[-1].startswith("trials 6/6 finished, 0 running, 0 failed | best val_accuracy")
    minutes, seconds = re.search(r"\| (\d+):(\d\d) elapsed$", lines[-1]).groups()
    assert len(lines) <= (60 * int(minutes) + int(seconds)) / PIPE_EVERY_S + 2
    assert not [own for own in TUNES_OWN if own in said], said[-3000:]


def test_verbose_brings_back_tunes_table_instead_of_the_line(ray_and_quiet, tmp_path):
    text = run_through("pipe", tmp_path, "--verbose")
    assert "== Status ==" in text and "| 0000-" in text, text[-3000:]
    assert not [line for line in text.splitlines() if line.startswith("trials ")]

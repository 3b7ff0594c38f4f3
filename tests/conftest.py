import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
WORDS = ("the quick brown fox jumps over a lazy dog while seven wise owls watch from an old oak tree "
         "and every morning a small bird sings near the river bank").split()


def make_text(n_words=4000, seed=0):
    """Deterministic pseudo-English, a few tens of kilobytes: enough for tiny models to learn from."""
    rng = np.random.default_rng(seed)
    words = rng.choice(WORDS, size=n_words)
    lines = [" ".join(words[i : i + 12]).capitalize() + ".\n" for i in range(0, n_words, 12)]
    return "".join(lines)


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path, monkeypatch):
    """Every test runs in its own empty directory, so runs/ and outputs never collide."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(make_text(), encoding="utf-8")
    return path


def run_cli(*args, input=None, timeout=120, env=None):
    """charlstm in a real subprocess: (returncode, stdout, stderr) as text."""
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("CHARLSTM_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "charlstm", *map(str, args)], input=input, capture_output=True,
                          text=True, timeout=timeout, env=full_env)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def cli(capsys, monkeypatch):
    """charlstm in this process, through the same entry point as the console script:
    cli("train", ...) -> (exit status, stdout, stderr)."""
    from charlstm.cli import main

    def invoke(*args, stdin=None):
        monkeypatch.setattr(sys, "argv", ["charlstm", *map(str, args)])
        if stdin is not None:
            import io

            fake = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8")
            monkeypatch.setattr(sys, "stdin", fake)
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


FOUR = ["the cat sat on the mat.", "the dog lay on the rug.", "a bird sang in the tree.", "my fish swam in the bowl."]


@pytest.fixture(scope="session")
def four_run(tmp_path_factory):
    """A small LSTM trained (about 4 s) on four sentences in random order: greedy filling of
    'the cat sat on the ___.' gives 'mat'. Shared by the sample and eval tests; never modified."""
    from charlstm import config
    from charlstm.train import Trainer

    root = tmp_path_factory.mktemp("four")
    rng = np.random.default_rng(0)
    corpus = root / "four.txt"
    corpus.write_text("".join(FOUR[i] + "\n" for i in rng.integers(0, 4, 1500)), encoding="utf-8")
    cfg = config.load(CONFIGS / "tiny.yaml", ["model.hidden=32", "data.batch=8", "data.window=32", "train.steps=300"])
    Trainer(cfg, [str(corpus)], root / "run", quiet=True).run()
    return root / "run"


def wait_for_training(proc, run, size=200):
    """Until the run has logged a few metric lines: its signal handlers are installed by then."""
    deadline = time.monotonic() + 60
    metrics = run / "metrics.jsonl"
    while not metrics.exists() or metrics.stat().st_size < size:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.02)


@contextlib.contextmanager
def group_killed_on_exit(proc):
    """For a process started with start_new_session=True: whatever the test does, its whole group is
    killed on the way out if it is still running (no stray workers after a failed test)."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

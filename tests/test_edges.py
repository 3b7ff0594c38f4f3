"""Ordinary but less common setups, tried as a new user would (issue 33): stdout that cannot be written,
options that would do nothing, messages that must not mislead."""

import os
import subprocess
import sys

import numpy as np
import pytest

from charlstm import checkpoint
from conftest import CONFIGS, ROOT, run_cli

CLOZE = ROOT / "data" / "rooms-cloze.tsv"
WRITERS = [("sample", "-n", "5", "--seed", "1", "Mady"), ("eval", "--cloze", "cloze.tsv"),
           ("inspect", "Mady"), ("corpus", "rooms", "--stories", "3")]


def _charlstm(args, stdout, preexec_fn=None):
    env = dict(os.environ)
    env.pop("CHARLSTM_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "charlstm", *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, timeout=120, env=env, preexec_fn=preexec_fn)


@pytest.fixture
def cloze_file(tmp_path):
    lines = CLOZE.read_text(encoding="utf-8").splitlines(keepends=True)[:3]
    (tmp_path / "cloze.tsv").write_text("".join(lines), encoding="utf-8")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", WRITERS, ids=lambda a: a[0])
def test_a_full_disk_on_stdout_is_the_users_one_line_and_exit_1(args, cloze_file):
    with open("/dev/full", "w") as full:
        proc = _charlstm(args, full)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "error: cannot write to stdout: No space left on device\n"


@pytest.mark.parametrize("args", WRITERS[1::2], ids=lambda a: a[0])
def test_a_closed_stdout_fails_instead_of_writing_nothing(args, cloze_file):
    proc = _charlstm(args, None, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == "error: cannot write to stdout: it is closed\n"


@pytest.mark.parametrize("args, said", [(("--time-budget", "0"), "--time-budget 0 (train.time_budget) leaves no time"),
                                        (("--time-budget", "0m"), "--time-budget 0m (train.time_budget) leaves no"),
                                        (("--set", "train.steps=0"), "--steps 0 (train.steps) trains nothing")])
def test_a_run_that_cannot_train_a_step_is_refused_before_anything_is_created(cli, corpus, tmp_path, args, said):
    code, out, err = cli("train", corpus, "--config", CONFIGS / "tiny.yaml", "--out", tmp_path / "run", *args)
    assert code == 1 and err.startswith(f"error: {said}") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_steps_0_is_refused_by_the_option_whose_help_says_so(cli, corpus, tmp_path):
    code, out, err = cli("train", corpus, "--out", tmp_path / "run", "--steps", "0")
    assert code == 2 and "Invalid value for '--steps': 0 is not in the range x>=1." in err, err
    assert "[x>=1]" in cli("train", "--help")[1]
    assert not (tmp_path / "run").exists()


def test_a_resume_with_no_time_to_train_is_refused(cli, corpus, tmp_path):
    run = tmp_path / "run"
    assert cli("train", corpus, "--config", CONFIGS / "tiny.yaml", "--out", run, "--steps", "2", "-q")[0] == 0
    code, _, err = cli("train", "--resume", run, "--steps", "4", "--time-budget", "0s")
    assert code == 1 and "leaves no time to train a step" in err, err
    assert checkpoint.load(run).step == 2


def test_a_resumed_run_says_where_it_resumes_and_a_file_is_not_a_run(cli, corpus, tmp_path):
    run = tmp_path / "run"
    assert cli("train", corpus, "--config", CONFIGS / "tiny.yaml", "--out", run, "--steps", "2", "-q")[0] == 0
    code, _, err = cli("train", "--resume", run, "--steps", "3")
    assert code == 0 and err.splitlines()[0].endswith(f"run directory {run}; resuming at step 2 of 3"), err
    assert "resuming" not in cli("train", corpus, "--config", CONFIGS / "tiny.yaml", "--out", tmp_path / "new",
                                 "--steps", "1")[2]
    for given, said in [(run / "best.npz", f"{run / 'best.npz'} is a file (its run: {run})"), (corpus, f"{corpus} is a file")]:
        code, _, err = cli("train", "--resume", given)
        assert code == 1 and err == f"error: --resume takes a run's directory, and {said}\n", err
    code, _, err = cli("train", "--resume", tmp_path / "typo")  # it said: no checkpoint at typo/latest.npz
    assert code == 1 and err == f"error: --resume: no run directory {tmp_path / 'typo'}\n", err


def test_greedy_refuses_several_samples_and_notes_the_knobs_it_ignores(cli):
    code, _, err = cli("sample", "--greedy", "--num-samples", "3", "Mady")
    assert code == 2 and "--greedy gives the same text every time: --num-samples 3" in err, err
    code, out, err = cli("sample", "--greedy", "-t", "0.5", "--top-p", "0.9", "-n", "3", "Mady")
    assert code == 0, err
    assert err == "note: --greedy always takes the likeliest character; -t, --top-p have no effect\n"
    code, _, err = cli("sample", "--greedy", "-n", "3", "Mady")
    assert code == 0 and err == "", err


def test_an_empty_until_is_refused(cli):
    code, _, err = cli("sample", "--until", ".", "--until", "", "Mady")
    assert code == 2 and "--until '' matches everywhere" in err, err


def test_ctrl_c_in_jsonl_keeps_what_was_generated(cli, monkeypatch):
    """jsonl holds a record until its sample is done; a Ctrl-C wrote nothing of what was made (issue 33).
    Now each sample of the batch goes out as far as it got, marked interrupted."""
    import json

    from charlstm import streams

    step, calls = streams.Writer.step, []

    def interrupted_at_the_tenth(self, *args):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return step(self, *args)

    monkeypatch.setattr(streams.Writer, "step", interrupted_at_the_tenth)
    code, out, err = cli("sample", "--format", "jsonl", "--num-samples", "2", "--seed", "3", "-n", "100", "Mady")
    assert code == 130, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["seed"] for r in records] == [3, 4]
    for r in records:
        assert r["interrupted"] is True and r["prompt"] == "Mady"
        assert 0 < len(r["completion"]) <= 9 and r["text"] == "Mady" + r["completion"]


@pytest.mark.parametrize("command", ["eval", "inspect"])
def test_eval_and_inspect_have_the_errors_option_their_advice_names(cli, tmp_path, monkeypatch, command):
    """An invalid byte's message says "use --encoding ... or --errors replace"; eval and inspect had
    neither --errors nor (inspect) --encoding (issue 33)."""
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"Mady said hi to Monica.\xff\n")
    args = [command, *(["--color", "never", "-"] if command == "inspect" else [str(bad)])]
    stdin = None
    if command == "inspect":  # the cli fixture feeds text; inspect reads the raw bytes of stdin
        import io

        stdin = io.TextIOWrapper(io.BytesIO(bad.read_bytes()), encoding="latin-1")
    run = _with_stdin(cli, stdin, monkeypatch)
    code, _, err = run(*args)
    assert code == 1 and "--errors replace to substitute U+FFFD" in err, err
    code, out, err = run(*args, "--errors", "replace", "--unknown", "skip")
    assert code == 0, err
    assert "dropped characters not in the vocabulary: '\ufffd'" in err
    code, out, err = run(*args, "--encoding", "latin-1", "--unknown", "skip")
    assert code == 0 and "'ÿ'" in err, err


def _with_stdin(cli, stream, monkeypatch):
    def run(*args):
        if stream is not None:
            stream.seek(0)
            monkeypatch.setattr(sys, "stdin", stream)
        return cli(*args)
    return run


def test_binary_files_skipped_in_a_corpus_directory_are_noted(cli, tmp_path):
    from conftest import make_text

    notes = tmp_path / "notes"
    (notes / "img").mkdir(parents=True)
    (notes / "a.txt").write_text(make_text(), encoding="utf-8")
    (notes / "img" / "x.png").write_bytes(b"\x89PNG\0\0\0")
    (notes / "y.bin").write_bytes(b"\0\1\2")
    code, _, err = cli("train", notes, "--config", CONFIGS / "tiny.yaml", "--steps", "1", "--out", tmp_path / "r")
    assert code == 0, err
    assert f"note: skipped 2 binary files (with NUL bytes) in {notes}, e.g. {notes / 'img' / 'x.png'}" in err


def test_the_numbering_of_default_run_directories_is_in_train_help(cli):
    code, out, _ = cli("train", "--help")
    assert code == 0 and "runs/<corpus name>-2, -3 ... when that holds a run" in " ".join(out.split())


def test_a_torch_run_resumed_without_pytorch_names_the_command_that_works(cli, corpus, tmp_path, monkeypatch):
    run = tmp_path / "run"
    assert cli("train", corpus, "--config", CONFIGS / "tiny.yaml", "--out", run, "--steps", "2", "-q")[0] == 0
    monkeypatch.setitem(sys.modules, "torch", None)  # as where PyTorch is not installed
    code, _, err = cli("train", "--resume", run, "--steps", "3", "--engine", "torch")
    assert code == 1 and err.startswith("error: the torch engine needs PyTorch"), err
    assert err.rstrip().endswith(f"or continue the run with NumPy: charlstm train --resume {run} --engine numpy")
    code, _, err = cli("train", "--resume", run, "--steps", "3", "--engine", "numpy", "-q")
    assert code == 0, err


def test_a_run_trained_from_stdin_says_how_to_resume_it(cli, tmp_path):
    from conftest import make_text

    run, text = tmp_path / "run", make_text()
    assert cli("train", "-", "--config", CONFIGS / "tiny.yaml", "--out", run, "--steps", "2", "-q",
               stdin=text)[0] == 0
    code, _, err = cli("train", "--resume", run, "--steps", "3")
    assert code == 1 and f"cat CORPUS | charlstm train - --resume {run}" in err, err
    code, _, err = cli("train", "-", "--resume", run, "--steps", "3", "-q", stdin=text)
    assert code == 0, err


def _display_width(line):
    import unicodedata

    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
               for c in line)


@pytest.mark.parametrize("width", [7, 100])
def test_inspect_lines_up_wide_and_combining_characters(width):
    """Terminal inspect drew one block per character: under a CJK character (two columns) or after a
    combining mark (none) the bars drifted from their characters (issue 33)."""
    from charlstm import inspection

    text = "日本語 cafe\u0301 ok\tＡ!"
    values = np.arange(len(text), dtype=float)
    lines = inspection.render_terminal(text, [("surprisal", values, "bits")], "none", width)
    body = lines[1:-1]
    assert len(body) >= 2 and len(body) % 2 == 0
    for shown, bars in zip(body[::2], body[1::2]):
        assert _display_width(shown) == _display_width(bars) == len(bars) <= width, (shown, bars)


def test_a_validation_loss_rising_three_times_in_a_row_is_a_warning_naming_the_best(cli, corpus, tmp_path,
                                                                                    monkeypatch):
    """On a tiny text the model chosen for a budget overfits; it ran on with the validation loss rising and
    said nothing (issue 33)."""
    from charlstm import numpyengine

    losses = iter([2.0, 1.5, 1.6, 1.7, 1.4, 1.5, 1.6, 1.8, 1.9])
    monkeypatch.setattr(numpyengine.NumpyEngine, "score", lambda self, ts, streams, window: (next(losses), 1))
    code, _, err = cli("train", corpus, "--config", CONFIGS / "tiny.yaml", "--out", tmp_path / "run", "--steps", "9",
                       "--set", "train.eval_every=1")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: the validation loss has risen")]
    assert warnings == ["warning: the validation loss has risen 3 validations in a row, to 1.8000 at step 8: the "
                        "model is learning the training text by heart (overfitting); best.npz holds step 5, "
                        "validation loss 1.4000 (a smaller model, more dropout or more text would do better)"]
    assert checkpoint.read(tmp_path / "run" / "best.npz")[1]["step"] == 5


def test_a_binary_file_given_as_a_corpus_is_called_binary_and_not_offered_errors_replace(tmp_path):
    """A file with NUL bytes, as a directory's binary files (skipped there): the advice to substitute U+FFFD
    led to training on an executable's bytes."""
    binary = tmp_path / "prog.bin"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00\xd0\x9f\xff\x00" * 50)
    code, out, err = run_cli("train", binary, "--steps", 1, "--out", tmp_path / "run")
    assert code == 1 and out == "", err
    assert "prog.bin: invalid utf-8 byte 0xff at byte offset 12" in err and "it holds NUL bytes, so it looks like a binary file" in err
    assert "--errors replace" not in err and len(err.strip().splitlines()) == 1

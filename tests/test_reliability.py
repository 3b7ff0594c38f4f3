"""Nothing lost, nobody surprised: kills, hostile checkpoints and hostile text."""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charlstm import checkpoint
from charlstm.data import load_corpus
from charlstm.vocab import Vocab
from charlstm.config import DataConfig
from charlstm.errors import CheckpointError
from conftest import CONFIGS, group_killed_on_exit, make_text, wait_for_training


def _tmp_files(run):
    return sorted(p.name for p in run.iterdir() if p.name.endswith(checkpoint.TMP_SUFFIX))


def _start(args):
    return subprocess.Popen([sys.executable, "-m", "charlstm", "train", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


@pytest.mark.slow
def test_random_sigkills_lose_nothing(tmp_path):
    """25 SIGKILLs at random moments, half of them while a checkpoint is being written; after each,
    --resume continues from a checkpoint that loads and verifies; stale temporary files are cleared by
    the next run; the final weights equal those of a run that was never killed."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text())
    run, straight = tmp_path / "run", tmp_path / "straight"
    total = 200
    opts = ["--config", CONFIGS / "tiny.yaml", "--set", "model.hidden=128", "--set", "model.layers=2",
            "--set", "train.save_every=1", "--set", "train.eval_every=1000", "--steps", total, "-q"]
    rng = random.Random(0)
    kills = during_write = 0
    seen_tmp = set()
    while kills < 25:
        proc = _start([corpus, *opts, "--out", run] if not (run / "latest.npz").exists() else
                      ["--resume", run, "--steps", total, "-q"])
        mtime = (run / "latest.npz").stat().st_mtime_ns if (run / "latest.npz").exists() else 0
        deadline = time.monotonic() + 60
        while ((run / "latest.npz").stat().st_mtime_ns if (run / "latest.npz").exists() else 0) == mtime:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.002)
        # this run has saved once: the temporaries of the runs killed before it are gone
        assert not (set(_tmp_files(run)) & seen_tmp)
        if kills % 2:  # wait for a write in progress
            until = time.monotonic() + 2
            while not [n for n in _tmp_files(run) if f".{proc.pid}." in n] and time.monotonic() < until:
                pass
        else:
            time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        left = _tmp_files(run)
        during_write += bool(left)
        seen_tmp |= set(left)
        ckpt = checkpoint.load(run / "latest.npz")  # loads and verifies its SHA-256
        assert ckpt.step < total
    assert during_write >= 3, during_write
    assert subprocess.run([sys.executable, "-m", "charlstm", "train", "--resume", str(run), "--steps", str(total),
                           "-q"]).returncode == 0
    assert not _tmp_files(run)
    assert _start([corpus, *opts, "--out", straight]).wait() == 0
    a, ma = checkpoint.read(run / "latest.npz")
    b, mb = checkpoint.read(straight / "latest.npz")
    assert ma["step"] == mb["step"] == total
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.fixture(scope="module")
def valid_checkpoint(tmp_path_factory):
    from charlstm import config, model

    spec = model.Spec("lstm", 5, 3, 1)
    params = model.init_params(spec, np.random.default_rng(0))
    cfg = config.Config()
    cfg.model.hidden, cfg.model.layers = 3, 1
    meta = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "vocab": list("abcde"),
            "config": config.to_dict(cfg), "step": 1}
    path = tmp_path_factory.mktemp("fuzz") / "c.npz"
    checkpoint.write(path, params, meta)
    return path.read_bytes(), params


FUZZ_RUNS = {"n": 0}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_checkpoints_load_verified_or_fail_with_one_line(valid_checkpoint, tmp_path, data):
    original, params = valid_checkpoint
    blob = bytearray(original)
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "splice"]))
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            i = data.draw(st.integers(0, len(blob) - 1))
            blob[i] ^= data.draw(st.integers(1, 255))
    elif kind == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "extend":
        blob += data.draw(st.binary(min_size=1, max_size=64))
    else:
        i = data.draw(st.integers(0, len(blob)))
        blob[i:i] = data.draw(st.binary(min_size=1, max_size=32))
    path = tmp_path / f"f{FUZZ_RUNS['n']}.npz"
    FUZZ_RUNS["n"] += 1
    path.write_bytes(bytes(blob))
    try:
        ckpt = checkpoint.load(path)
    except CheckpointError as e:
        assert "\n" not in str(e) and str(e)
    else:  # only harmless damage (zip slack, a trailing comment) may load, and then exactly the original
        for name, a in params.items():
            np.testing.assert_array_equal(ckpt.params[name], a)


def test_arrays_declaring_more_bytes_than_their_file_holds_are_refused(tmp_path):
    import zipfile

    path = tmp_path / "bomb.npz"
    header = b"\x93NUMPY\x01\x00" + b"v\x00" + b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"
    header = header.ljust(128 - 1) + b"\n"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("decoder.weight.npy", header + b"\0" * 16)
        z.writestr("meta.npy", header + b"\0" * 16)
        z.writestr("sha256.npy", header + b"\0" * 16)
    with pytest.raises(CheckpointError, match="declares"):
        checkpoint.load(path)


# ------------------------------------------------------------------------------------------ hostile text


@pytest.mark.parametrize("text", [
    "a\0b\0c\n" * 50,  # NUL bytes: ordinary characters in a file given by name
    "café cafe\u0301 naïve\n" * 40,  # precomposed and combining: kept as they are, no normalisation
    "hi 👋🏽 family 👨‍👩‍👧\n" * 40,  # astral characters and joiners: one code point, one character
    "line one\r\nline two\nline three\rend\n" * 30,  # CRLF, LF and CR: kept, no newline translation
])
def test_unusual_text_round_trips_and_trains(cli, tmp_path, text):
    path = tmp_path / "t.txt"
    path.write_bytes(text.encode("utf-8"))
    corpus = load_corpus([str(path)], DataConfig(val_fraction=0.0))
    assert corpus.vocab.decode(corpus.train) == text
    code, _, err = cli("train", path, "--config", CONFIGS / "tiny.yaml", "--steps", 5, "-q",
                       "--set", "data.batch=2", "--set", "data.window=8", "--out", tmp_path / "run")
    assert code == 0, err
    code, out, err = cli("sample", "-c", tmp_path / "run", "-n", 10, "--seed", 1, text[:4])
    assert code == 0 and out.startswith(text[:4])


def test_lone_surrogates_and_invalid_utf8_are_errors(cli, tmp_path, four_run):
    bad = tmp_path / "bad.txt"
    bad.write_bytes("fine\n".encode() + b"\xed\xa0\x80 surrogate\n")  # UTF-8 of a lone surrogate: invalid
    code, _, err = cli("train", bad, "--config", CONFIGS / "tiny.yaml")
    assert code == 1 and "invalid utf-8 byte 0xed at byte offset 5 (line 2)" in err
    code, out, err = cli("sample", "-c", four_run, "the \udcff cat")  # how Python passes an undecodable argv byte
    assert code == 1 and "prompt 1 is not valid UTF-8" in err and out == ""
    code, out, err = cli("sample", "-c", four_run, "--unknown", "skip", "the \udcff cat")
    assert code == 1 and "not valid UTF-8" in err


def test_vocabulary_handles_every_plane():
    text = "".join(chr(c) for c in (0, 9, 10, 13, 65, 0x301, 0x4E2D, 0xFFFD, 0x1F600, 0x10FFFF))
    vocab = Vocab.from_text(text)
    assert vocab.chars == sorted(text) and vocab.decode(vocab.encode(text)) == text


@pytest.mark.slow
def test_a_100_mb_single_line_is_mapped_and_barely_adds_to_resident_memory(tmp_path):
    """A corpus of encoded.MAP_FROM bytes or more is encoded once, in chunks, into an ids file that
    training maps, its pages let go as they are read: resident memory does not grow with the text. Peak
    resident memory of a whole `charlstm train`, less that of the same run on a tiny corpus (read into
    memory), per character of the large one: 0.16 measured in stream mode (the first run, which encodes
    the text: 16 MB of chunks, whatever the size), 0.27 in lines mode (the ids file reused; the index of
    the line's 392,000 pieces of data.window - 1 characters, and the 16 MB chunks of the search for
    newlines). Both runs must train: a run that stops with an error peaks low too."""
    size = 100_000_000
    big = tmp_path / "big.txt"
    block = b"abcdefghij klmnopqrst uvwxyz " * 40  # 1,160 characters
    with open(big, "wb") as fh:
        for _ in range(size // len(block)):
            fh.write(block)
        fh.write(b"\n")  # one line, ended: lines mode needs a newline in the vocabulary
    small = tmp_path / "small.txt"
    # 23,201 characters: enough for batch 4 x window 256 (the 1,160 it had made that run fail, unseen)
    small.write_bytes(block * 20 + b"\n")
    # the peak is read after main() has finished, whatever its exit status; the status is printed too
    script = ("import sys; from charlstm.cli import main\ntry:\n    main()\n    status = 0\n"
              "except SystemExit as e:\n    status = e.code\n"
              "print(status, 1024 * int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]),"
              " file=sys.stderr)")

    def peak(corpus, mode):
        run = tmp_path / f"run-{corpus.stem}-{mode}"
        out = subprocess.run([sys.executable, "-c", script, "train", str(corpus), "--config", str(CONFIGS / "tiny.yaml"),
                              "--steps", "2", "-q", "--set", f"data.mode={mode}", "--set", "train.val_max_chars=1000",
                              "--set", "data.window=256", "--out", str(run)], capture_output=True, text=True)
        status, memory = out.stderr.strip().splitlines()[-1].split()
        assert status in ("0", "None"), out.stderr  # trained: the run exited 0 ...
        assert checkpoint.load(run / "latest.npz").step == 2  # ... and saved the step it was asked for
        return int(memory)

    if not os.path.exists("/proc/self/status"):
        pytest.skip("needs /proc to read peak memory")
    for mode in ("stream", "lines"):
        per_char = (peak(big, mode) - peak(small, mode)) / size
        assert per_char < {"stream": 0.25, "lines": 0.4}[mode], (mode, per_char)


# ------------------------------------------------------------------------------------- repeated Ctrl-C


@pytest.mark.slow
@pytest.mark.parametrize("signals, spacing", [(2, 0.01), (2, 0.05), (3, 0.01), (3, 0.05)])
def test_ctrl_c_twice_or_three_times_never_loses_the_run(tmp_path, signals, spacing):
    """Ctrl-C reaches the whole process group, workers included; `timeout -s INT` sends two at once.
    The second asks before aborting anything, a third aborts what is under way; whatever happens, no
    worker traceback, exit 130, and a run directory that --resume continues."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text())
    run = tmp_path / "run"
    # checkpoints of a few MB that take a while to write, and no save or validation before the stop
    opts = ["--config", CONFIGS / "tiny.yaml", "--set", "train.workers=2", "--set", "model.hidden=256",
            "--set", "model.layers=2", "--set", "data.batch=8", "--set", "train.log_every=1",
            "--set", "train.save_every=100000", "--set", "train.eval_every=100000"]
    proc = subprocess.Popen([sys.executable, "-m", "charlstm", "train", str(corpus), *map(str, opts), "--out",
                             str(run), "--steps", "100000"], stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    with group_killed_on_exit(proc):
        wait_for_training(proc, run)
        for i in range(signals):
            if i:
                time.sleep(spacing)
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err and "Error" not in err, err
    assert proc.returncode == 130, err
    step = checkpoint.load(run / "latest.npz").step
    resumed = subprocess.run([sys.executable, "-m", "charlstm", "train", "--resume", str(run), "--steps",
                              str(step + 2), "-q"], capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert checkpoint.load(run / "latest.npz").step == step + 2

"""`charlstm train`: the run directory, determinism, resume, stops and failures."""

import json
import math
import os
import pty
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from charlstm import checkpoint, evaluate, model
from charlstm import train as train_mod
from charlstm.errors import Interrupted
from charlstm.launch import prepare
from charlstm.numpyengine import NumpyEngine
from charlstm.report import progress_bar
from charlstm.rundir import RunLock
from charlstm.stops import StopRequests
from charlstm.trainstate import TrainState
from conftest import CONFIGS, make_text, run_cli

TINY = CONFIGS / "tiny.yaml"


def weights(run_dir, name="latest.npz"):
    """Every array of a checkpoint except meta: model, optimizer and carried state."""
    entries, meta = checkpoint.read(run_dir / name)
    return entries, meta


def assert_same_training_state(a, b):
    ea, ma = weights(a)
    eb, mb = weights(b)
    assert sorted(ea) == sorted(eb)
    for name in ea:
        np.testing.assert_array_equal(ea[name], eb[name], err_msg=name)
    assert (ma["step"], ma["epoch"], ma["window"]) == (mb["step"], mb["epoch"], mb["window"])


def test_train_writes_a_run_directory(cli, corpus, tmp_path):
    code, out, err = cli("train", corpus, "--config", TINY, "--out", tmp_path / "run")
    assert code == 0, err
    run = tmp_path / "run"
    assert {"config.yaml", "metrics.jsonl", "latest.npz", "best.npz"} <= {p.name for p in run.iterdir()}
    assert out == ""  # data only on stdout; train prints none
    assert "done: step 40" in err
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in lines if "train_loss" in r]
    val_lines = [r for r in lines if "val_loss" in r]
    assert [r["step"] for r in train_lines] == list(range(5, 41, 5))
    assert {"step", "epoch", "train_loss", "lr", "grad_norm", "chars_per_s", "elapsed"} <= set(train_lines[0])
    assert [r["step"] for r in val_lines] == [20, 40]
    assert {"val_loss", "val_bpc"} <= set(val_lines[0])
    assert train_lines[-1]["train_loss"] < train_lines[0]["train_loss"]  # it learns
    ckpt = checkpoint.load(run)
    assert ckpt.path.name == "best.npz"
    assert ckpt.vocab.chars == sorted(set(corpus.read_text()))
    assert ckpt.config.model.hidden == 16
    assert "hidden: 16" in (run / "config.yaml").read_text()


def test_checkpoint_loads_with_plain_numpy_and_pytorch_names(cli, corpus, tmp_path):
    cli("train", corpus, "--config", TINY, "--out", tmp_path / "run", "-q")
    with np.load(tmp_path / "run" / "latest.npz", allow_pickle=False) as z:
        names = set(z.files)
        meta = json.loads(z["meta"].tobytes().decode("utf-8"))
    assert {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
            "decoder.weight", "decoder.bias", "state.h", "state.c", "meta", "sha256"} <= names
    assert any(n.startswith("optim.exp_avg.") for n in names)
    assert meta["format"] == "charlstm-checkpoint" and meta["version"] == 1
    assert meta["step"] == 40 and isinstance(meta["vocab"], list)


def test_same_seed_same_run_bit_for_bit(cli, corpus, tmp_path):
    for name in ("a", "b"):
        assert cli("train", corpus, "--config", TINY, "--out", tmp_path / name, "-q")[0] == 0
    assert_same_training_state(tmp_path / "a", tmp_path / "b")
    code, _, _ = cli("train", corpus, "--config", TINY, "--out", tmp_path / "c", "-q", "--seed", "7")
    assert code == 0
    a, _ = weights(tmp_path / "a")
    c, _ = weights(tmp_path / "c")
    assert not np.array_equal(a["decoder.weight"], c["decoder.weight"])


@pytest.mark.parametrize("stop, extra", [(7, []), (20, []), (33, []),
                                         (13, ["--set", "model.dropout=0.3", "--set", "model.layers=2",
                                               "--set", "model.decoder_dropout=0.2"]),
                                         (17, ["--set", "data.mode=lines", "--set", "model.dropout=0.1",
                                               "--set", "model.layers=2", "--set", "data.curriculum_steps=25"]),
                                         (19, ["--set", "optim.ema=0.9"])])
def test_resume_is_bit_identical_to_an_uninterrupted_run(cli, corpus, tmp_path, stop, extra):
    # random offsets and several epochs: the corpus is cut so that an epoch is about 10 windows
    text = make_text(90)
    corpus.write_text(text)
    opts = ["--config", TINY, "-q", "--set", "data.window=8", "--set", "data.batch=5", *extra]
    assert cli("train", corpus, *opts, "--out", tmp_path / "straight")[0] == 0
    assert cli("train", corpus, *opts, "--out", tmp_path / "split", "--steps", stop)[0] == 0
    assert weights(tmp_path / "split")[1]["step"] == stop
    code, _, err = cli("train", "--resume", tmp_path / "split", "--steps", 40, "-q")
    assert code == 0, err
    assert weights(tmp_path / "split")[1]["epoch"] >= 1
    assert_same_training_state(tmp_path / "straight", tmp_path / "split")


def test_resume_continues_the_metrics_without_duplicates(cli, corpus, tmp_path):
    run = tmp_path / "run"
    cli("train", corpus, "--config", TINY, "--out", run, "-q", "--steps", 20)
    # a line from a session that died after the last checkpoint
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({"step": 25, "train_loss": 1.0}) + "\n")
    assert cli("train", "--resume", run, "-q", "--steps", 40)[0] == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if "train_loss" in line]
    assert steps == list(range(5, 41, 5))


def test_refuses_to_overwrite_a_run_unless_forced(cli, corpus, tmp_path):
    run = tmp_path / "run"
    cli("train", corpus, "--config", TINY, "--out", run, "-q", "--steps", 10)
    before = (run / "latest.npz").read_bytes()
    code, _, err = cli("train", corpus, "--config", TINY, "--out", run, "-q")
    assert code == 1 and "already holds a run" in err and "--resume" in err
    assert (run / "latest.npz").read_bytes() == before
    assert cli("train", corpus, "--config", TINY, "--out", run, "-q", "--force")[0] == 0
    assert weights(run)[1]["step"] == 40


def test_default_run_directory_is_numbered(cli, corpus, tmp_path):
    cli("train", corpus, "--config", TINY, "-q", "--steps", 5)
    cli("train", corpus, "--config", TINY, "-q", "--steps", 5)
    assert (tmp_path / "runs" / "corpus" / "latest.npz").exists()
    assert (tmp_path / "runs" / "corpus-2" / "latest.npz").exists()


def test_resume_refuses_model_changes_and_other_text(cli, corpus, tmp_path):
    run = tmp_path / "run"
    cli("train", corpus, "--config", TINY, "--out", run, "-q", "--steps", 10)
    code, _, err = cli("train", "--resume", run, "--set", "model.hidden=32")
    assert code == 1 and "model.hidden cannot change when resuming" in err
    other = tmp_path / "other.txt"
    other.write_text(make_text(seed=5))
    code, _, err = cli("train", other, "--resume", run, "--steps", 20)
    assert code == 1 and "corpus differs" in err
    code, _, err = cli("train", "--resume", run, "--set", "optim.lr=0.001", "--steps", 20, "-q")
    assert code == 0, err
    assert checkpoint.load(run / "latest.npz").config.optim.lr == 0.001


def test_a_warm_start_keeps_the_characters_both_vocabularies_know(cli, corpus, tmp_path):
    """The new text adds characters (H, {, }) and lacks one ('.', early in the sorted vocabulary): the
    vocabulary is the union, so '.' stays and every shared character after 'H' sits one place further:
    weights follow the character, not the place."""
    run = tmp_path / "run"
    assert cli("train", corpus, "--config", TINY, "--out", run, "-q", "--steps", 5)[0] == 0
    source = checkpoint.load(run / "latest.npz")
    other = tmp_path / "other.txt"
    other.write_text(make_text(seed=5).replace("the", "THE").replace(".", "") + "xyz{}\n")
    warm = tmp_path / "warm"
    code, _, err = cli("train", other, "--config", TINY, "--out", warm, "-q", "--steps", 1,
                       "--set", f"model.init_from={run / 'latest.npz'}", "--set", "optim.lr=1e-12")
    assert code == 0, err
    ckpt = checkpoint.load(warm / "latest.npz")  # one step at a rate of 1e-12: the starting weights
    new, old = ckpt.vocab, source.vocab
    shared = [c for c in new.chars if c in old.index]
    fresh = [c for c in new.chars if c not in old.index]
    assert new.chars == sorted(set(old.chars) | set(other.read_text()))
    assert len(shared) > 10 and {"H", "{", "}"} <= set(fresh) and "." in new.index and "." not in other.read_text()
    assert any(new.index[c] != old.index[c] for c in shared)  # places moved: matching by place would be wrong
    for c in shared:
        np.testing.assert_allclose(ckpt.params["lstm.weight_ih_l0"][:, new.index[c]],
                                   source.params["lstm.weight_ih_l0"][:, old.index[c]], atol=1e-6)
        np.testing.assert_allclose(ckpt.params["decoder.weight"][new.index[c]],
                                   source.params["decoder.weight"][old.index[c]], atol=1e-6)
    np.testing.assert_allclose(ckpt.params["lstm.weight_hh_l0"], source.params["lstm.weight_hh_l0"], atol=1e-6)
    m = ckpt.config.model  # a character the checkpoint lacks starts as in a model trained from scratch
    scratch = model.init_params(ckpt.spec, np.random.default_rng([ckpt.config.train.seed, 0]), np.float32,
                                m.forget_bias, m.chrono, m.orthogonal, m.open_gates)
    ids = [new.index[c] for c in fresh]
    for name in ("decoder.bias", "decoder.weight"):
        np.testing.assert_allclose(ckpt.params[name][ids], scratch[name][ids], atol=1e-6)
    np.testing.assert_allclose(ckpt.params["lstm.weight_ih_l0"][:, ids], scratch["lstm.weight_ih_l0"][:, ids], atol=1e-6)
    code, _, err = cli("train", other, "--config", TINY, "--out", tmp_path / "bad", "-q", "--steps", 1,
                       "--set", f"model.init_from={run / 'latest.npz'}", "--set", "model.hidden=24")
    assert code == 1 and "model.hidden=24 (--set) conflicts with model.init_from" in err
    assert not (tmp_path / "bad").exists()
    for target, message in ((tmp_path / "nope.npz", "no checkpoint or run directory at"),
                            (other, "model.init_from: "), (tmp_path, "model.init_from: ")):
        code, _, err = cli("train", other, "--config", TINY, "--out", tmp_path / "bad", "-q", "--steps", 1,
                           "--set", f"model.init_from={target}")
        assert code == 1 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    code, _, err = cli("train", other, "--out", tmp_path / "bad", "-q", "--time-budget", "1m",
                       "--set", f"model.init_from={run / 'latest.npz'}", "--set", "model.size=auto")
    assert code == 1 and "model.size auto" in err and "model.init_from" in err


def test_weight_average_is_the_model_a_run_validates_and_saves(cli, corpus, tmp_path):
    run = tmp_path / "run"
    trainer = prepare([str(corpus)], TINY, run, overrides=["optim.ema=0.8", "train.eval_every=30", "train.steps=30"],
                      quiet=True)
    trainer.run()
    entries, _ = weights(run)
    ckpt = checkpoint.load(run / "latest.npz")
    stepped = {k: entries[f"optim.weights.{k}"] for k in ckpt.params}  # the weights the steps moved
    assert not np.array_equal(ckpt.params["decoder.bias"], stepped["decoder.bias"])
    # the validation loss logged at the last step is the saved model's, the average's
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if "val_loss" in line]

    def val_loss(params):
        total, count = evaluate.score(params, trainer.inputs.val_streams, trainer.cfg.data.window)
        return total / count
    assert logged[-1]["step"] == 30
    assert logged[-1]["val_loss"] == pytest.approx(val_loss(ckpt.params), rel=1e-6)
    assert logged[-1]["val_loss"] != pytest.approx(val_loss(stepped), rel=1e-6)
    code, _, err = cli("train", "--resume", run, "--set", "optim.ema=0")
    assert code == 1 and "optim.ema cannot change when resuming" in err
    code, _, err = cli("train", corpus, "--config", TINY, "--out", tmp_path / "bad", "--set", "optim.ema=1")
    assert code == 1 and "optim.ema must each lie in [0, 1)" in err


def test_time_budget_stops_cleanly_and_saves(cli, corpus, tmp_path):
    code, _, err = cli("train", corpus, "--config", TINY, "--out", tmp_path / "run", "--steps", 10**7,
                       "--time-budget", "1s", "--set", f"train.eval_every={10**7}")
    assert code == 0, err
    step = weights(tmp_path / "run")[1]["step"]
    assert 0 < step < 10**7
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("time budget reached") and "val " in summary
    assert f"at step {step}" in summary and "inf" not in summary


def test_the_validation_where_a_run_stops_counts_for_best(cli, corpus, tmp_path):
    """Issue 18, item 1: a run stopped between two scheduled validations validates where it stopped, and
    that counts for best.npz like any other validation; both checkpoints record the loss of their weights."""
    run = tmp_path / "run"
    code, _, err = cli("train", corpus, "--config", TINY, "--out", run, "--steps", 10**6, "--time-budget", "2s",
                       "--set", "train.eval_every=1000000")
    assert code == 0 and "time budget reached" in err
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in lines if r.get("final")]
    assert len(final) == 1 and "val_loss" in final[0]
    latest, best = (checkpoint.load(run / name).meta for name in ("latest.npz", "best.npz"))
    assert best["step"] == latest["step"] == final[0]["step"] == latest["best_step"]
    assert best["val_loss"] == latest["val_loss"] == latest["best_val"] == final[0]["val_loss"]


def test_validation_file_and_stdin_corpus(cli, corpus, tmp_path):
    val = tmp_path / "val.txt"
    val.write_text(make_text(300, seed=9))
    code, _, err = cli("train", corpus, "--val", val, "--config", TINY, "--out", tmp_path / "a", "-q")
    assert code == 0, err
    meta = weights(tmp_path / "a")[1]
    assert meta["corpus"]["val_chars"] == len(val.read_text())
    assert meta["corpus"]["train_chars"] == len(corpus.read_text())
    code, _, err = cli("train", "-", "--config", TINY, "--out", tmp_path / "b", "-q", stdin=corpus.read_text())
    assert code == 0, err
    assert weights(tmp_path / "b")[1]["corpus"]["train_chars"] == int(len(corpus.read_text()) * 0.9 + 0.5)


@pytest.mark.parametrize("args, message", [
    (["--set", "optim.lrr=1"], "unknown config key optim.lrr; valid keys in optim: name, lr"),
    (["--set", "model.cell=lstmm"], "model.cell must be one of lstm, gru, rnn"),
    (["--set", "data.batch=many"], "data.batch must be an integer"),
    (["--time-budget", "soon"], "time budget must look like"),
    (["--set", "nonsense"], "--set takes section.key=value"),
])
def test_bad_settings_are_one_line_errors(cli, corpus, args, message):
    code, out, err = cli("train", corpus, "--config", TINY, *args)
    assert code == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_corpora_are_one_line_errors(cli, tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("abc" * 10)
    (tmp_path / "bad.txt").write_bytes(b"fine\nstill fine\nbad \xff here\n")
    (tmp_path / "one.txt").write_text("x")
    for path, message in [("missing.txt", "no such file: missing.txt"), ("empty.txt", "corpus is empty"),
                          ("one.txt", "the training text has 1 character; batch 4 x window 16 needs"),
                          ("short.txt", "the training text has 27 characters; batch 4 x window 16 needs at least 83"),
                          ("bad.txt", "bad.txt: invalid utf-8 byte 0xff at byte offset 20 (line 3)")]:
        code, _, err = cli("train", tmp_path / path if path != "missing.txt" else path, "--config", TINY)
        assert code == 1, path
        assert message in err and err.count("\n") == 1, err
    code, _, err = cli("train", tmp_path / "bad.txt", "--errors", "replace", "--config", TINY,
                       "--set", "data.batch=1", "--set", "data.window=4", "--set", "data.val_fraction=0", "-q")
    assert code == 0, err


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(cli, corpus, tmp_path, monkeypatch):
    real_forward = model.forward
    calls = {"n": 0}

    def failing_forward(params, window, state, *args, **kwargs):
        loss, state, cache = real_forward(params, window, state, *args, **kwargs)
        if window.x.shape[1] == 4:  # training windows only (validation runs 2 streams)
            calls["n"] += 1
            if calls["n"] == 15:
                loss = float("nan")
        return loss, state, cache

    monkeypatch.setattr(model, "forward", failing_forward)
    run = tmp_path / "run"
    code, _, err = cli("train", corpus, "--config", TINY, "--out", run)
    assert code == 1
    assert "the training loss became nan at step 15" in err and f"{run / 'latest.npz'}" in err
    assert weights(run)[1]["step"] == 10  # the save at step 10 is intact


def test_failed_checkpoint_write_keeps_the_previous_one(cli, corpus, tmp_path, monkeypatch):
    run = tmp_path / "run"
    cli("train", corpus, "--config", TINY, "--out", run, "-q", "--steps", 10)
    before = (run / "latest.npz").read_bytes()
    real_savez = np.savez

    def full_disk(fh, **arrays):
        real_savez(fh, **arrays)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", full_disk)
    code, _, err = cli("train", "--resume", run, "--steps", 20)
    assert code == 1
    assert "No space left on device" in err and "the previous one is intact" in err and "stopped" in err
    assert (run / "latest.npz").read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    code, _, err = cli("train", "--resume", run, "--steps", 20, "--set", "train.on_save_error=continue")
    assert code == 0
    assert err.count("warning: could not write") >= 2  # latest at step 20 and best
    assert (run / "latest.npz").read_bytes() == before


def test_a_run_directory_in_use_is_refused(cli, corpus, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with RunLock(run):
        code, _, err = cli("train", corpus, "--config", TINY, "--out", run)
    assert code == 1 and "is in use by another charlstm train" in err
    # a holder that dies releases the lock
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from charlstm.rundir import RunLock\n"
                               f"with RunLock({str(run)!r}):\n print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    assert cli("train", corpus, "--config", TINY, "--out", run)[0] == 1
    holder.kill()
    holder.wait()
    assert cli("train", corpus, "--config", TINY, "--out", run, "-q")[0] == 0


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_and_resume_matches_an_uninterrupted_run(corpus, tmp_path, sig, code):
    run = tmp_path / "run"
    opts = ["--config", TINY, "--set", "train.save_every=1000", "--set", "train.eval_every=1000"]
    proc = subprocess.Popen([sys.executable, "-m", "charlstm", "train", str(corpus), *map(str, opts), "--out",
                             str(run), "--steps", "100000"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (run / "metrics.jsonl").exists() or (run / "metrics.jsonl").stat().st_size < 300:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert f"saved {run / 'latest.npz'}" in err and f"charlstm train --resume {run}" in err
    stopped_at = checkpoint.load(run / "latest.npz").step
    assert stopped_at > 0
    assert checkpoint.load(run / "best.npz").step == stopped_at  # the stop's validation counts (issue 18)
    total = stopped_at + 25
    assert subprocess.run([sys.executable, "-m", "charlstm", "train", "--resume", str(run), "--steps", str(total),
                           "-q"]).returncode == 0
    straight = tmp_path / "straight"
    assert subprocess.run([sys.executable, "-m", "charlstm", "train", str(corpus), *map(str, opts), "--out",
                           str(straight), "--steps", str(total), "-q"]).returncode == 0
    assert_same_training_state(straight, run)


def test_force_leaves_nothing_of_the_old_run(cli, corpus, tmp_path):
    run = tmp_path / "run"
    cli("train", corpus, "--config", TINY, "--out", run, "-q")
    assert (run / "best.npz").exists()
    code, _, err = cli("train", corpus, "--config", TINY, "--out", run, "-q", "--force", "--steps", "1")
    assert code == 0, err
    assert checkpoint.read(run / "best.npz")[1]["step"] == 1  # the new run's, validated at its one step
    assert checkpoint.load(run).step == 1
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 1]


def test_resume_keeps_what_shapes_state_and_randomness(cli, corpus, tmp_path):
    run = tmp_path / "run"
    cli("train", corpus, "--config", TINY, "--out", run, "-q", "--steps", 10, "--time-budget", "1h")
    for setting in ("train.seed=5", "optim.name=sgd", "optim.momentum=0.5", "data.batch=3"):
        code, _, err = cli("train", "--resume", run, "--set", setting)
        assert code == 1 and f"{setting.split('=')[0]} cannot change when resuming" in err, err
    code, _, err = cli("train", "--resume", run, "--steps", 20, "-q")
    assert code == 0, err
    assert checkpoint.load(run / "latest.npz").config.train.time_budget is None  # one session's budget


def test_resume_from_another_directory_with_a_validation_file(cli, corpus, tmp_path, monkeypatch):
    val = tmp_path / "val.txt"
    val.write_text(make_text(200, seed=4))
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    code, _, err = cli("train", "../corpus.txt", "--val", "../val.txt", "--config", TINY, "--out", "../run", "-q",
                       "--steps", 10)
    assert code == 0, err
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("train", "--resume", "run", "--steps", 20, "-q")
    assert code == 0, err
    meta = checkpoint.load(tmp_path / "run" / "latest.npz").meta
    assert meta["corpus"]["val_file"] == str(val) and meta["corpus"]["files"] == [str(corpus)]


def test_window_must_be_positive_for_eval(cli, four_run):
    code, _, err = cli("eval", "-c", four_run, "--window", 0, "-")
    assert code == 2 and "Invalid value for '--window'" in err


def test_the_progress_bar_shows_on_a_terminal_that_reports_no_size():
    """A fresh pseudo-terminal has 0 columns and 0 rows (as under `script` or some CI runners); tqdm
    prints nothing at all there unless it is given a size."""
    master, slave = pty.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as stream:
        assert os.get_terminal_size(stream.fileno()).columns == 0
        bar = progress_bar(10, 0, False, stream)
        bar.update(3)
        bar.close()
        stream.flush()
    shown = b""
    try:  # everything written, however the pty hands it out: the slave is closed, so the end reads EIO
        while chunk := os.read(master, 65536):
            shown += chunk
    except OSError:
        pass
    os.close(master)
    shown = shown.decode("utf-8", "replace")
    assert "3/10" in shown and "█" in shown


# ------------------------------------------------------------------------------ issue 18: training items


@pytest.fixture
def restore_signals():
    """The CLI ignores SIGINT and SIGTERM once a run has stopped on one (the process is exiting): give
    them back to pytest after a test that runs such a stop in this process."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_third_ctrl_c_aborts_the_save_and_the_run_still_resumes(cli, corpus, tmp_path, monkeypatch,
                                                                   restore_signals):
    """Ctrl-C stops after the step and saves; a second one only says that a third will abort; the third
    aborts the save. latest.npz then holds the step it had (the one saved when the run started), which
    --resume continues."""
    real_forward, real_save = model.forward, TrainState.save
    calls = {"forward": 0}

    def forward(params, window, state, *args, **kwargs):
        if window.x.shape[1] == 4:  # training windows (validation runs 2 streams)
            calls["forward"] += 1
            if calls["forward"] == 7:
                os.kill(os.getpid(), signal.SIGINT)
        return real_forward(params, window, state, *args, **kwargs)

    def save(self, path, *args):
        if path.name == "latest.npz" and self.progress.step == 7:  # the save after the stop: two more Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real_save(self, path, *args)

    monkeypatch.setattr(model, "forward", forward)
    monkeypatch.setattr(TrainState, "save", save)
    run = tmp_path / "run"
    code, _, err = cli("train", corpus, "--config", TINY, "--out", run, "--set", "train.save_every=1000")
    assert code == 130, err
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # a fourth Ctrl-C cannot break the exit
    assert f"aborted without saving at step 7; {run / 'latest.npz'} holds step 0" in err
    assert "Traceback" not in err
    assert checkpoint.load(run / "latest.npz").step == 0
    monkeypatch.setattr(model, "forward", real_forward)
    monkeypatch.setattr(TrainState, "save", real_save)
    code, _, err = cli("train", "--resume", run, "--steps", 5, "-q")
    assert code == 0, err
    assert checkpoint.load(run / "latest.npz").step == 5


def test_the_first_signal_says_at_once_that_the_run_is_stopping(tmp_path):
    """The step, the save and the last validation can take half a minute on a busy machine: the first
    Ctrl-C or SIGTERM says what is coming (it was silent until the summary); -q keeps it quiet."""
    for quiet, said in ((False, "stopping: finishing this step, then saving latest.npz and validating\n"), (True, "")):
        path = tmp_path / f"err{quiet}"
        with open(path, "w") as stream:
            StopRequests(stream, quiet=quiet).handle(signal.SIGTERM, None)
        assert path.read_text() == said


@pytest.mark.parametrize("phase", ["training", "saving", "validating"])
def test_a_second_ctrl_c_says_what_a_third_would_do_and_the_save_completes(phase):
    """Whatever the stop is doing when the second Ctrl-C comes (finishing the step, saving, validating),
    the second only speaks; the third aborts."""
    stops = StopRequests(None, quiet=True)
    stops.handle(signal.SIGINT, None)
    assert stops.signal == signal.SIGINT and not stops.aborted
    stops.phase = phase
    try:
        stops.handle(signal.SIGINT, None)  # the second: a message, nothing aborted
    except KeyboardInterrupt:  # caught: escaping, it would stop the whole test session
        pytest.fail(f"a second Ctrl-C aborted the stop while {phase}")
    assert not stops.aborted
    stops.handle(signal.SIGTERM, None)  # a repeated SIGTERM never aborts
    with pytest.raises(KeyboardInterrupt):
        stops.handle(signal.SIGINT, None)
    stops.handle(signal.SIGINT, None)  # once aborting, the rest are ignored
    done = StopRequests(None, quiet=True)
    done.phase = "done"
    for _ in range(4):
        done.handle(signal.SIGINT, None)
    assert not done.aborted


def interrupt_after(steps, monkeypatch):
    """Make the run's loop receive a SIGINT (in this process, as from Ctrl-C) during its step number
    `steps`: the run then stops after that step. The loop calls train.train_step once per step."""
    real, done = train_mod.train_step, []

    def step(*args, **kwargs):
        done.append(1)
        if len(done) == steps:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)

    monkeypatch.setattr(train_mod, "train_step", step)


def test_a_stop_on_a_signal_keeps_the_best_validations_weights_in_best_npz(cli, corpus, tmp_path, monkeypatch,
                                                                          restore_signals):
    """Issue 31: a run stopped on a signal validates where it stops, and that validation counts for best.npz
    only when it is the lowest. Here it is made the worst (the stop's validation scores double), after
    scheduled ones at steps 5 and 10: best.npz must hold the weights, step and loss of the better of those
    two, not the weights the run stopped with."""
    real_score = NumpyEngine.score

    def score(self, ts, streams, window):
        total, count = real_score(self, ts, streams, window)
        return (2 * total if ts.progress.step == 11 else total), count

    interrupt_after(11, monkeypatch)
    monkeypatch.setattr(NumpyEngine, "score", score)
    opts = ["--config", TINY, "--set", "train.workers=1", "--set", "train.eval_every=5", "--set", "train.save_every=1000"]
    run = tmp_path / "run"
    code, _, err = cli("train", corpus, *opts, "--out", run, "--steps", 100)
    assert code == 130, err
    scored = {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "val_loss" in r}
    assert sorted(scored) == [5, 10, 11] and scored[11].get("final")
    best_step = min((5, 10), key=lambda s: scored[s]["val_loss"])
    assert scored[11]["val_loss"] > scored[best_step]["val_loss"]  # what the test is about: the stop is not best
    best, latest = checkpoint.load(run / "best.npz"), checkpoint.load(run / "latest.npz")
    assert latest.step == 11 and latest.meta["best_step"] == best_step
    assert best.step == best_step and best.meta["val_loss"] == scored[best_step]["val_loss"]
    monkeypatch.undo()
    code, _, err = cli("train", corpus, *opts, "--out", tmp_path / "straight", "--steps", best_step, "-q")
    assert code == 0, err
    straight = checkpoint.load(tmp_path / "straight" / "latest.npz")  # the weights at best_step, trained again
    for name, value in straight.params.items():
        np.testing.assert_array_equal(best.params[name], value, err_msg=name)


def test_a_second_ctrl_c_while_the_stop_saves_lets_the_save_finish(corpus, tmp_path, monkeypatch, restore_signals):
    """Issue 31: the second Ctrl-C, landing while the stop writes latest.npz (put there by construction,
    not by timing), only says what a third would do: the save completes, and the run exits 130 with the
    step it stopped at saved."""
    run = tmp_path / "run"
    trainer = prepare([str(corpus)], TINY, run, overrides=["train.save_every=1000"], quiet=True)
    real_save, seen = TrainState.save, []

    def save(self, path, *args):
        if path.name == "latest.npz" and self.progress.step == 7 and not seen:  # the stop's save
            seen.append(trainer.stops.phase)
            os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, during the save
        return real_save(self, path, *args)

    interrupt_after(7, monkeypatch)
    monkeypatch.setattr(TrainState, "save", save)
    with pytest.raises(Interrupted) as stopped:
        trainer.run()
    assert seen == ["saving"] and trainer.stops.again == 1 and not trainer.stops.aborted
    assert stopped.value.exit_code == 130
    assert str(stopped.value).startswith(f"interrupted at step 7; saved {run / 'latest.npz'}")
    assert checkpoint.load(run / "latest.npz").step == 7


@pytest.mark.parametrize("case", ["missing", "latin-1", "encoding", "yaml", "short val", "nan"])
def test_a_failed_start_leaves_no_run_directory(tmp_path, corpus, case):
    """Issue 18, item 10: the inputs are checked before anything is created, and a new run that fails
    before it has saved a step removes what it wrote (the NaN case fails at step 3, in a subprocess)."""
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9 au lait\n".encode("latin-1") * 50)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model:\n  hidden: 16\n x: 2\n")
    one = tmp_path / "one.txt"
    one.write_text("a")
    args = {"missing": ["nope.txt"], "latin-1": [latin], "encoding": [corpus, "--encoding", "bogus"],
            "yaml": [corpus, "--config", bad_yaml], "short val": [corpus, "--val", one],
            "nan": [corpus, "--set", "optim.name=sgd", "--set", "optim.lr=1e300", "--set", "optim.clip=0"]}[case]
    config = [] if case == "yaml" else ["--config", TINY]
    code, out, err = run_cli("train", *args, *config, "-q")
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: "), err
    assert not (tmp_path / "runs").exists(), sorted(str(p) for p in (tmp_path / "runs").rglob("*"))


def test_a_failed_run_in_an_existing_directory_keeps_what_was_there(cli, corpus, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code, _, err = cli("train", corpus, "--config", TINY, "--out", out, "--set", "optim.name=sgd", "--set", "optim.lr=1e300",
                       "--set", "optim.clip=0")
    assert code == 1 and "nothing of the run is kept" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_validation_text_too_short_to_score_is_refused(tmp_path, corpus):
    one = tmp_path / "one.txt"
    one.write_text("a")
    code, _, err = run_cli("train", corpus, "--val", one, "--config", TINY, "--out", tmp_path / "run")
    assert code == 1 and f"the validation text {one} has 1 character: too short to score" in err, err
    assert err.count("\n") == 1


def test_resume_with_no_step_left_says_how_to_extend_the_run(tmp_path, corpus):
    run = tmp_path / "run"
    assert run_cli("train", corpus, "--config", TINY, "--out", run, "-q", "--steps", 20)[0] == 0
    code, out, err = run_cli("train", "--resume", run, "--steps", 10)
    assert code == 1 and err.count("\n") == 1, err
    assert f"{run} is already at step 20, so --steps 10 leaves nothing to train" in err
    assert f"charlstm train --resume {run} --steps 40" in err
    code, out, err = run_cli("train", "--resume", run)
    assert code == 1 and f"{run} has finished: it is at step 20 of 20" in err, err
    assert checkpoint.load(run / "latest.npz").step == 20


def test_a_curriculum_run_says_why_its_training_loss_is_low(tmp_path):
    stories = tmp_path / "stories.txt"
    stories.write_text("".join(f"{'ab' * (k % 30)}c\n" for k in range(400)))
    opts = ["--config", TINY, "--set", "data.mode=lines", "--set", "data.window=64", "--steps", 2]
    code, _, err = run_cli("train", stories, *opts, "--set", "data.curriculum_steps=100", "--out", tmp_path / "a")
    assert code == 0, err
    note = [line for line in err.splitlines() if line.startswith("note: curriculum")]
    assert len(note) == 1 and "shortest 25% of the lines first" in note[0] and "expected" in note[0], err
    code, _, err = run_cli("train", stories, *opts, "--out", tmp_path / "b")
    assert code == 0 and "note: curriculum" not in err


def test_a_nan_gradient_norm_with_a_finite_loss_stops_training(cli, corpus, tmp_path, monkeypatch):
    """Issue 18, item 21: the loss is finite, the gradient is not; the run stops before the update."""
    real_backward = model.backward
    calls = {"n": 0}

    def backward(params, cache, *args, **kwargs):
        grads = real_backward(params, cache, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 15:
            grads["decoder.bias"][0] = np.inf
        return grads

    monkeypatch.setattr(model, "backward", backward)
    run = tmp_path / "run"
    code, _, err = cli("train", corpus, "--config", TINY, "--out", run)
    assert code == 1
    assert "the gradient norm became" in err and "at step 15" in err and f"{run / 'latest.npz'}" in err, err
    assert weights(run)[1]["step"] == 10
    assert not any(json.loads(line)["step"] > 14 for line in (run / "metrics.jsonl").read_text().splitlines())


def test_extending_a_cosine_run_stretches_the_schedule_from_there_on(cli, corpus, tmp_path):
    """Documented: --steps larger than before, with the cosine schedule, lays the cosine over the new
    total from the resumed step on (a run started with that total would have had other rates before)."""
    from charlstm.optim import learning_rate

    run = tmp_path / "run"
    opts = ["--set", "optim.schedule=cosine", "--set", "optim.min_lr=0.001", "--set", "train.log_every=1"]
    assert cli("train", corpus, "--config", TINY, "--out", run, "-q", "--steps", 20, *opts)[0] == 0
    code, _, err = cli("train", "--resume", run, "--steps", 60)
    assert code == 0, err
    assert "the cosine schedule now spans 60 steps instead of 20" in err
    logged = {r["step"]: r["lr"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
              if "lr" in r}
    cfg = checkpoint.load(run / "latest.npz").config
    assert logged[20] == pytest.approx(learning_rate(cfg.optim, 19, 0, 20))  # the end of the first cosine
    for step in (21, 40, 60):
        assert logged[step] == pytest.approx(learning_rate(cfg.optim, step - 1, 0, 60))
    assert logged[21] > 2 * logged[20]  # the rate went back up: the cosine restarted over 60 steps


def test_the_torch_engine_without_pytorch_is_one_line_and_creates_nothing(cli, corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as where PyTorch is not installed: import torch fails
    code, _, err = cli("train", corpus, "--config", TINY, "--engine", "torch", "--out", tmp_path / "run")
    assert (code, err) == (1, "error: the torch engine needs PyTorch: pip install torch (or, in charlstm's "
                          "checkout, pip install '.[torch]')\n")
    assert not (tmp_path / "run").exists()


def test_processes_of_torchrun_but_rank_0_write_and_say_nothing(cli, corpus, tmp_path, monkeypatch):
    """What torchrun's other ranks skip, seen with one: the numpy engine refuses to run under torchrun, so
    the Trainer's parts are exercised directly."""
    from charlstm import rundir

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    trainer = prepare([str(corpus)], TINY, out=tmp_path / "run")
    assert not trainer.main and trainer.report.quiet and trainer.metrics.path is None
    trainer.metrics.append({"step": 1})
    with rundir.Follower() as follower:
        assert follower.save("latest.npz", None, None, "stop", print)
    code, _, err = cli("train", corpus, "--config", TINY, "--dry-run")
    assert code == 1 and "torchrun" in err
    assert not (tmp_path / "run").exists()


def test_a_long_validation_is_announced(cli, corpus, tmp_path, monkeypatch):
    from charlstm import train

    monkeypatch.setattr(train, "LARGE_VALIDATION", 100)
    code, _, err = cli("train", corpus, "--config", TINY, "--out", tmp_path / "run", "--steps", 1)
    assert code == 0 and "note: every validation scores all" in err and "train.val_max_chars" in err


def test_time_steps_spreads_its_windows_over_the_run_when_asked(monkeypatch):
    """--dry-run of a run with a curriculum times windows from all over the run: its first windows hold
    only the shortest lines (the default run's estimate was 6.1 minutes against 11.5 taken)."""
    from types import SimpleNamespace

    from charlstm import config, trainstep

    cfg = config.Config()
    cfg.train.steps = 1500
    seen = []
    monkeypatch.setattr(trainstep, "train_step", lambda engine, ts, window, *rest: seen.append(window.step))
    window = lambda epoch, n, step: SimpleNamespace(step=step, targets=lambda: 1)  # noqa: E731
    batches = SimpleNamespace(windows_per_epoch=600, starts_sequence=lambda n: False, window=window)
    ts = SimpleNamespace(progress=SimpleNamespace(step=100), state=None)
    for spread in (False, True):
        seen.clear()
        assert trainstep.time_steps(None, ts, cfg, None, batches, 0.0, (8, 8), spread=spread)[2] == 8
        if spread:  # the untimed first, then eight from the 1,400 steps left
            assert seen[0] == 100 and len(set(seen)) == 9 and min(seen) >= 100 and max(seen) > 1200
        else:
            assert seen == list(range(100, 109))


def test_the_bar_says_validation_is_pending_until_the_first_one():
    from charlstm.report import Reporter

    r = Reporter(True, None)
    r.loss, r.speed = 3.25, 1234.0
    assert r._postfix() == "loss 3.250 val pending 1,234 chars/s"
    r.val = math.log(2)
    assert r._postfix() == "loss 3.250 val 0.693 bpc 1.000 1,234 chars/s"

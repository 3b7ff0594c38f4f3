"""The torch engine (charlstm/torchengine.py) against the NumPy engine: the same steps from the same weights
and windows within float32 rounding; DistributedDataParallel over two gloo processes as one process with
the whole batch; a run resumed on the other engine; stops under torchrun; its checkpoints read by
sample, eval, inspect and plot. Skipped where PyTorch is not installed (CI's default install)."""

import copy
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install '.[torch]'); the "
                                            "torch engine's tests need it")

import elman  # noqa: E402
from charlstm import checkpoint, config, model  # noqa: E402
from charlstm.cells import CELLS  # noqa: E402
from charlstm.data import make_batches, split_streams  # noqa: E402
from charlstm.numpyengine import LocalEngine  # noqa: E402
from charlstm.optim import learning_rate  # noqa: E402
from charlstm.torchengine import TorchEngine  # noqa: E402
from charlstm.trainstate import TrainState  # noqa: E402
from charlstm.vocab import Vocab  # noqa: E402
from conftest import CONFIGS, make_text  # noqa: E402

TINY = CONFIGS / "tiny.yaml"
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # torch's threads spin on a busy machine; these models are small
torch.set_num_threads(1)


def both_engines(overrides, steps=20):
    """Train one TrainState on each engine from the same weights and windows; returns the two states, the
    per-step (loss, norm) of each, the engines and the corpus's held-out streams."""
    cfg = config.load(None, ["model.hidden=32", "model.layers=2", "data.batch=8", "data.window=16", *overrides])
    text = make_text(3000)
    vocab = Vocab.from_text(text)
    ids = vocab.encode(text)
    spec = model.Spec(cfg.model.cell, len(vocab), cfg.model.hidden, cfg.model.layers)
    batches = make_batches(ids, vocab, cfg.data, 0)
    ours = TrainState.new(cfg, spec)
    theirs = copy.deepcopy(ours)
    engines = LocalEngine(spec), TorchEngine(spec, cfg)
    figures = ([], [])
    for engine, ts in zip(engines, (ours, theirs)):
        engine.adopt(ts)
        for step in range(steps):
            epoch, n = divmod(step, batches.windows_per_epoch)
            if batches.starts_sequence(n):
                ts.state = model.zero_state(spec, cfg.data.batch)
            lr = learning_rate(cfg.optim, step, epoch, steps)
            figures[engines.index(engine)].append(engine.step(ts, batches.window(epoch, n, step), lr, cfg.optim.clip))
    engines[1].pull(theirs)
    return ours, theirs, figures, engines, split_streams(ids[:600], 3)


def assert_close_states(ours, theirs, weights=1e-4):
    for name, a in ours.params.items():
        np.testing.assert_allclose(theirs.params[name], a, atol=weights, rtol=0, err_msg=name)
    for slot, arrays in ours.optimizer.state.items():
        for name, a in arrays.items():
            scale = float(np.abs(a).max()) or 1.0
            np.testing.assert_allclose(theirs.optimizer.state[slot][name] / scale, a / scale, atol=1e-3,
                                       err_msg=f"{slot} {name}")
    assert theirs.optimizer.step_count == ours.optimizer.step_count
    if ours.optimizer.average is not None:
        for name, a in ours.optimizer.average.items():
            np.testing.assert_allclose(theirs.optimizer.average[name], a, atol=weights, rtol=0, err_msg=name)
    for a, b in zip(ours.state, theirs.state):
        assert isinstance(b, np.ndarray) and a.shape == b.shape
        np.testing.assert_allclose(b, a, atol=weights * 10, rtol=0)


@pytest.mark.parametrize("overrides", [
    ["optim.clip=0.2"],
    ["optim.clip=0.2", "optim.ema=0.9"],
    ["optim.name=rmsprop", "optim.lr=0.003", "optim.clip=0.2"],
    ["optim.name=rmsprop", "optim.centered=true", "optim.momentum=0.5", "optim.lr=0.001", "model.cell=rnn"],
    ["optim.name=sgd", "optim.momentum=0.9", "optim.nesterov=true", "optim.lr=0.1", "optim.weight_decay=0.01"],
    ["optim.name=adamw", "optim.weight_decay=0.1", "model.cell=gru", "data.mode=lines", "data.curriculum_steps=10"],
], ids=["adam-clip", "adam-clip-ema", "rmsprop-clip", "rmsprop-centered-rnn", "sgd-nesterov", "adamw-gru-lines"])
def test_twenty_steps_agree_with_the_numpy_engine(overrides):
    """Same initial weights and windows: losses, gradient norms, weights, optimizer state, moving average
    and carried state agree within float32 rounding after 20 steps (masks and curriculum in lines mode),
    and so does the validation score."""
    ours, theirs, (a, b), engines, streams = both_engines(overrides)
    for step, ((loss, norm), (t_loss, t_norm)) in enumerate(zip(a, b)):
        assert t_loss == pytest.approx(loss, rel=1e-5), step
        assert t_norm == pytest.approx(norm, rel=1e-4), step
    assert any(norm > 0.2 for _, norm in a) or "optim.clip=0.2" not in overrides  # clipping was at work
    assert_close_states(ours, theirs)
    scored = [engine.score(ts, streams, 16) for engine, ts in zip(engines, (ours, theirs))]
    assert scored[1][1] == scored[0][1] and scored[1][0] == pytest.approx(scored[0][0], rel=1e-5)


def train(cli, corpus, run, *opts):
    code, _, err = cli("train", corpus, "--config", TINY, "-q", "--out", run, *opts)
    assert code == 0, err


def metric_steps(run):
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()
            if "train_loss" in line]


def assert_close_checkpoints(a, b, atol=1e-4):
    ea, ma = checkpoint.read(a / "latest.npz")
    eb, mb = checkpoint.read(b / "latest.npz")
    assert sorted(ea) == sorted(eb) and ma["step"] == mb["step"]
    for name in ea:
        scale = max(float(np.abs(ea[name]).max()), 1.0) if name.startswith("optim.exp_avg") else 1.0
        np.testing.assert_allclose(eb[name], ea[name], atol=atol * scale, rtol=1e-3, err_msg=name)


@pytest.mark.parametrize("first, then", [("numpy", "torch"), ("torch", "numpy")])
def test_a_run_resumes_on_the_other_engine_where_it_stopped(cli, corpus, tmp_path, first, then):
    """Stopped on one engine at step 12 and resumed on the other to 24, a run reaches what 24 steps on the
    first give (weights, Adam's moments, moving average, carried state), its metrics continue, and its
    config names the engine it last ran on."""
    opts = ["--set", "optim.ema=0.9", "--set", "model.layers=2", "--set", "optim.clip=0.2"]
    train(cli, corpus, tmp_path / "straight", *opts, "--engine", first, "--steps", 24)
    train(cli, corpus, tmp_path / "split", *opts, "--engine", first, "--steps", 12)
    code, _, err = cli("train", "--resume", tmp_path / "split", "--steps", 24, "--engine", then, "-q")
    assert code == 0, err
    assert_close_checkpoints(tmp_path / "straight", tmp_path / "split")
    assert metric_steps(tmp_path / "split") == [5, 10, 12, 15, 20, 24]  # 12: the end of the first session
    assert checkpoint.load(tmp_path / "split" / "latest.npz").config.train.engine == then


def test_a_torch_run_is_read_by_sample_eval_inspect_and_plot(cli, corpus, tmp_path):
    run = tmp_path / "run"
    train(cli, corpus, run, "--engine", "torch", "--set", "model.dropout=0.2", "--set", "model.layers=2",
          "--set", "model.decoder_dropout=0.1")
    assert {"latest.npz", "best.npz", "metrics.jsonl", "config.yaml"} <= {p.name for p in run.iterdir()}
    assert "engine: torch" in (run / "config.yaml").read_text()
    for args in (["sample", "-c", run, "The", "-n", 30, "--seed", 1], ["eval", "-c", run, corpus],
                 ["inspect", "-c", run, "the quick fox", "--color", "never"], ["plot", run, "--color", "never"]):
        code, out, err = cli(*args)
        assert code == 0 and out, (args, err)
    again = tmp_path / "again"  # dropout masks from torch's generator, seeded: the same run on a CPU
    train(cli, corpus, again, "--engine", "torch", "--set", "model.dropout=0.2", "--set", "model.layers=2",
          "--set", "model.decoder_dropout=0.1")
    a, _ = checkpoint.read(run / "latest.npz")
    b, _ = checkpoint.read(again / "latest.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_the_torch_engine_names_what_it_cannot_run(cli, corpus, tmp_path, monkeypatch):
    monkeypatch.setitem(CELLS, "elman", elman)
    code, _, err = cli("train", corpus, "--config", TINY, "--engine", "torch", "--set", "model.cell=elman",
                       "--out", tmp_path / "a")
    assert code == 1 and "model.cell elman has no PyTorch module" in err
    code, _, err = cli("train", corpus, "--config", TINY, "--engine", "numpy", "--device", "cuda")
    assert code == 1 and "train.device cuda needs train.engine torch" in err
    if not torch.cuda.is_available():
        code, _, err = cli("train", corpus, "--config", TINY, "--engine", "torch", "--device", "cuda")
        assert code == 1 and err.count("\n") == 1 and "PyTorch finds no CUDA device" in err
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it
    code, _, err = cli("train", corpus, "--config", TINY, "--out", tmp_path / "b")
    assert code == 1 and "only the torch engine trains across processes: add --engine torch" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ---------------------------------------------------------------------------------------------- torchrun


def torchrun(*args, **popen):
    """`torchrun --standalone --nproc_per_node 2 -m charlstm ...` with this interpreter."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "charlstm", *map(str, args)]
    return subprocess.Popen(command, env=dict(os.environ, **ONE_THREAD), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


@pytest.mark.slow
def test_ddp_over_two_gloo_processes_is_one_process_with_the_whole_batch(cli, corpus, tmp_path):
    """Each process trains its share of the batch's streams (2 and 3 of 5); the run equals one process
    with all 5 within float32 rounding. Only rank 0 writes and speaks."""
    opts = ["--config", TINY, "--engine", "torch", "--set", "data.batch=5", "--set", "optim.ema=0.9",
            "--set", "model.layers=2", "--steps", 30]
    proc = torchrun("train", corpus, *opts, "--out", tmp_path / "ddp")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert err.count("training lstm") == 1 and err.count("done: step 30") == 1 and out == ""
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == [".lock", "best.npz", "config.yaml", "latest.npz",
                                                                    "metrics.jsonl"]
    code, _, err = cli("train", corpus, *opts, "-q", "--out", tmp_path / "one")
    assert code == 0, err
    assert_close_checkpoints(tmp_path / "one", tmp_path / "ddp", atol=1e-5)
    assert metric_steps(tmp_path / "ddp") == metric_steps(tmp_path / "one")


def ranks(parent):
    """{rank: pid} of the processes torchrun started below parent."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = dict(e.split(b"=", 1) for e in fh.read().split(b"\0") if b"=" in e)
            if b"TORCHELASTIC_RUN_ID" in environ and _descends(int(pid), parent):
                found[int(environ[b"RANK"])] = int(pid)
        except (OSError, KeyError, ValueError):  # gone, or not ours to read
            continue
    return found


def _descends(pid, ancestor):
    while pid > 1:
        if pid == ancestor:
            return True
        with open(f"/proc/{pid}/stat") as fh:
            pid = int(fh.read().rsplit(")", 1)[1].split()[1])
    return False


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc"), reason="finds torchrun's processes in /proc")
def test_a_sigterm_to_one_process_stops_all_of_them_with_a_saved_checkpoint(corpus, tmp_path):
    run = tmp_path / "run"
    proc = torchrun("train", corpus, "--config", TINY, "--engine", "torch", "--set", "data.batch=8",
                    "--set", "train.save_every=100000", "--steps", 100000, "--out", run)
    try:
        deadline = time.monotonic() + 120
        while not (run / "metrics.jsonl").exists() or (run / "metrics.jsonl").stat().st_size < 300:
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()[1]
            time.sleep(0.05)
        workers = ranks(proc.pid)
        assert sorted(workers) == [0, 1]
        os.kill(workers[1], signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    saved = checkpoint.load(run / "latest.npz")
    assert saved.step > 0 and f"terminated at step {saved.step}; saved" in err
    assert err.count("stopped by signal") == 1
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert logged[-1] == saved.step  # the validation where the run stopped
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers.values())


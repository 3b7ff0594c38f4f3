"""Training with the batch shared among worker processes (charlstm/parallel.py)."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from charlstm import checkpoint, model
from charlstm.data import Window
from charlstm.parallel import ParallelEngine
from conftest import CONFIGS, group_killed_on_exit, wait_for_training


@pytest.mark.parametrize("cell, masked", [("lstm", False), ("gru", True)])
def test_workers_give_the_loss_state_and_gradients_of_one_process(cell, masked):
    rng = np.random.default_rng(0)
    spec = model.Spec(cell, 9, 8, 2)
    T, B = 6, 5
    params = model.init_params(spec, rng, np.float64)
    x, y = rng.integers(0, 9, (T, B)), rng.integers(0, 9, (T, B))
    state = tuple(rng.normal(size=s.shape) for s in model.zero_state(spec, B, np.float64))
    mask = (rng.random((T, B)) < 0.7).astype(np.float64) if masked else None
    loss, final, cache = model.forward(params, Window(x, y, mask), state)
    grads = model.backward(params, cache)
    with ParallelEngine(spec, B, T, 2, np.float64) as dp:
        shared = dp.share(params)
        p_loss, p_final, p_grads = dp.forward_backward(shared, Window(x, y, mask), state)
        assert p_loss == pytest.approx(loss, rel=1e-12)
        for a, b in zip(final, p_final):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        for k in params:
            np.testing.assert_allclose(p_grads[k], grads[k], rtol=1e-10, atol=1e-13, err_msg=k)
        x2 = x[:3]  # a shorter window (lines mode) reuses the shared buffers
        window2 = Window(x2, y[:3], None if mask is None else mask[:3])
        p_loss2, _, _ = dp.forward_backward(shared, window2, state)
        assert p_loss2 == pytest.approx(model.forward(params, window2, state)[0],
                                        rel=1e-12)
    assert not multiprocessing.active_children()


@pytest.mark.slow
def test_training_with_workers_resumes_bit_for_bit(cli, corpus, tmp_path):
    opts = ["--config", CONFIGS / "tiny.yaml", "-q", "--set", "train.workers=2", "--set", "model.dropout=0.2",
            "--set", "model.layers=2"]
    assert cli("train", corpus, *opts, "--out", tmp_path / "straight", "--steps", 30)[0] == 0
    assert cli("train", corpus, *opts, "--out", tmp_path / "split", "--steps", 12)[0] == 0
    code, _, err = cli("train", "--resume", tmp_path / "split", "--steps", 30, "-q")
    assert code == 0, err
    a, ma = checkpoint.read(tmp_path / "straight" / "latest.npz")
    b, mb = checkpoint.read(tmp_path / "split" / "latest.npz")
    assert ma["step"] == mb["step"] == 30
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert not multiprocessing.active_children()


def test_workers_outlive_a_sigterm_and_close_twice():
    """A SIGTERM to the process group reaches the workers too; they must go on serving the main process,
    which decides when to stop them."""
    rng = np.random.default_rng(5)
    spec = model.Spec("gru", 7, 6, 1)
    params = model.init_params(spec, rng, np.float64)
    x, y = rng.integers(0, 7, (4, 4)), rng.integers(0, 7, (4, 4))
    state = model.zero_state(spec, 4, np.float64)
    dp = ParallelEngine(spec, 4, 4, 2, np.float64)
    with dp:
        shared = dp.share(params)
        for proc in dp.procs:
            os.kill(proc.pid, signal.SIGTERM)
        time.sleep(0.3)
        assert all(proc.is_alive() for proc in dp.procs)
        loss, _, _ = dp.forward_backward(shared, Window(x, y), state)
        assert loss == pytest.approx(model.forward(params, Window(x, y), state)[0], rel=1e-12)
    assert not any(proc.is_alive() for proc in dp.procs)
    dp.close()  # a second close is harmless


def test_a_process_that_never_closes_its_workers_still_exits():
    """Workers ignore SIGTERM, which is how multiprocessing stops daemon processes at exit; a ParallelEngine
    left open (an error before close) is closed at exit instead of leaving the interpreter waiting."""
    code = ("import numpy as np\n"
            "from charlstm import model\n"
            "from charlstm.parallel import ParallelEngine\n"
            "kept = [ParallelEngine(model.Spec('lstm', 5, 4, 1), 4, 3, 2, np.float64)]\n"
            "raise SystemExit(3)\n")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 3


@pytest.mark.slow
def test_a_signal_to_the_whole_process_group_stops_cleanly(corpus, tmp_path):
    """`timeout` and `kill -- -PGID` send SIGTERM to the workers too: the run must still save and say so,
    not report a dead worker."""
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "charlstm", "train", str(corpus), "--config",
                             str(CONFIGS / "tiny.yaml"), "--set", "train.workers=2", "--set", "train.save_every=100000",
                             "--out", str(run), "--steps", "100000"], stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    with group_killed_on_exit(proc):
        wait_for_training(proc, run, size=300)
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped by signal" in err and "worker" not in err
    assert "saved in" not in err and err.count(f"saved {run / 'latest.npz'} (continue with") == 1  # said once
    assert checkpoint.load(run / "latest.npz").step > 0


def test_workers_end_quietly_when_the_main_process_stops_listening_mid_step(capfd):
    """A third Ctrl-C can stop the main process in the middle of a step: it closes the pipes while the
    workers compute. They must end without a traceback (they printed BrokenPipeError ones, issue 18)."""
    rng = np.random.default_rng(1)
    spec = model.Spec("lstm", 7, 64, 1)
    T, B = 200, 4
    dp = ParallelEngine(spec, B, T, 2, np.float64)
    procs = list(dp.procs)
    dp.arrays["x"][:] = rng.integers(0, 7, (T, B))
    dp.arrays["y"][:] = rng.integers(0, 7, (T, B))
    for conn in dp.conns:
        conn.send(("step", T, False, float(T * B), None))
    dp.close()  # without reading their replies
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err


def test_too_little_shared_memory_trains_in_one_process_with_a_note(cli, corpus, tmp_path, monkeypatch):
    """Docker's /dev/shm is 64 MB: a block larger than the free space is created all the same and the first
    write past it is a SIGBUS (issue 33). The space is checked first; one process trains instead, said."""
    from charlstm import parallel

    spec = model.Spec("lstm", 30, 512, 2)
    need = parallel.Layout(spec, 64, 256, 2, np.float32).nbytes
    monkeypatch.setattr(parallel, "shm_free", lambda: (need, "it"))  # the block alone fits, with no room to spare
    assert parallel.shm_shortfall(spec, 64, 256, 2).startswith("too little shared memory")
    monkeypatch.setattr(parallel, "shm_free", lambda: (1 << 20, "/dev/shm has 1 MB free"))
    started = []
    monkeypatch.setattr(parallel.ParallelEngine, "__init__", lambda *a, **k: started.append(a))
    code, _, err = cli("train", corpus, "--config", CONFIGS / "tiny.yaml", "--set", "train.workers=2",
                       "--steps", 3, "--out", tmp_path / "run")
    assert code == 0, err
    assert not started
    assert "note: too little shared memory for the" in err
    assert "/dev/shm has 1 MB free; training in one process" in err
    monkeypatch.setattr(parallel, "shm_free", lambda: None)  # no /dev/shm to ask (macOS): workers as asked
    code, _, err = cli("train", corpus, "--config", CONFIGS / "tiny.yaml", "--set", "train.workers=2",
                       "--steps", 3, "--out", tmp_path / "run2")
    assert started and "/dev/shm" not in err


def test_a_file_size_limit_counts_as_too_little_shared_memory(cli, corpus, tmp_path):
    """A block of shared memory is a file: over `ulimit -f` it cannot be created (EFBIG), and Python's
    resource tracker printed a traceback on top of an internal error (issue 33). The limit is checked
    first, in a real process under a real limit; the checkpoint write that then fails is one line."""
    import resource

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    env = dict(os.environ)
    env.pop("CHARLSTM_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "charlstm", "train", str(corpus), "--steps", "2", "--out",
                           str(tmp_path / "run"), "--set", "model.hidden=512", "--set", "train.workers=2",
                           "--set", "data.batch=32"], capture_output=True, text=True, timeout=300, env=env,
                          preexec_fn=limited)
    assert "the file size limit (ulimit -f) is 4 MB; training in one process" in proc.stderr
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("error: could not write ")
    assert "File too large" in proc.stderr and "Traceback" not in proc.stderr and "internal" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_the_one_process_engine_warms_openblas_up_when_built(monkeypatch):
    """charlstm/blaswarmup.py: without one large product first, OpenBLAS ran S's weight-gradient product
    2.5 times slower (bench/blas_warmup.py); the engine of one process runs it when it is built (the
    workers' call is checked by that bench and bench/speed.py, not here)."""
    from charlstm import blaswarmup
    from charlstm.numpyengine import LocalEngine

    calls = []
    monkeypatch.setattr(blaswarmup, "warm_up", lambda: calls.append(1))
    LocalEngine(model.Spec("lstm", 5, 4, 1))
    assert calls == [1]

"""charlstm against PyTorch's nn.LSTM on this CPU, each in its own fresh process, measured as users run them.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/speed.py     # S, M, L; 2 threads
    python bench/speed.py --configs M --threads 1 --rounds 7 --seconds 3
    python bench/speed.py --configs S --rounds 2 --seconds 0.3 --skip memory  # a smoke run

Measure with the processor's own BLAS kernel. OpenBLAS picks it at run time, unless OPENBLAS_CORETYPE (or
OPENBLAS_L2_SIZE) overrides it: some shells set them as a workaround for old OpenBLAS builds, users'
machines don't, and on this machine the override (Haswell in place of SkylakeX) made NumPy's products on
the training shapes several times slower. Unset them for the benchmark command alone, as above. The bench
prints the kernel and thread count NumPy got (threadpoolctl), warns when either variable is set, and will
not write --doc from such a run (or from one whose kernel differs from the one OpenBLAS picks without
them) unless given --allow-overridden-kernel.

Every measurement is a series of rounds, and a round is one fresh process per side, in turn (charlstm,
PyTorch, charlstm, ...): `python bench/speed.py --worker ours|torch|bound --part train --config M ...`.
Each child gets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS set to --threads (read by the
libraries when they are imported; PyTorch also gets torch.set_num_threads) and otherwise this
environment unchanged. A child warms up (at least 2 calls and --warmup seconds), then times single calls
for at least --seconds (and 3 calls) and reports their median; the figure is the median over rounds, as
characters per second, and the ratio is charlstm's over PyTorch's:
  train    the training step of `charlstm train` itself: the bench runs the Trainer that the CLI builds
           (launch.prepare, so its choice of worker processes, parallel.auto_workers, or --workers) on a
           random 1 MB corpus and times each call of train.train_step in its loop (forward, backward,
           clipping, Adam); PyTorch: one-hot input, nn.LSTM, nn.Linear, cross-entropy, clip_grad_norm_,
           Adam, state carried and detached;
  bound    the GEMM bound: T*B characters over the time the window's matrix products alone take at the
           float32 GEMM speed NumPy reaches on the same shapes (a third process in every round);
  sample   characters generated per second at batch 1 and batch 64 (prime, then sample at temperature 1),
           PyTorch with oneDNN on and off (two processes);
  eval     characters scored per second by full-context evaluation of one long text (batch 1);
  memory   peak memory of `charlstm train` on L, once.
One JSON object per configuration goes to stdout (with the run's kernel, threads and command under "run",
and every round's figure under "rounds"); progress, the kernel and warnings to stderr. A child that fails
is reported in one line and its side left out; Ctrl-C stops the running child (and its workers) first.
Without torch the peer fields are null. --doc docs/performance.md rewrites that page's tables.

Benchmark-only dependencies, never charlstm's: threadpoolctl (required here), and PyTorch for the peer
(pip install torch==2.13.0 threadpoolctl, in a side environment).
"""

import argparse
import datetime
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # charlstm from the checkout this script is in, whatever is installed

CONFIGS = {  # name: (H, L, B, T)
    "S": (128, 1, 32, 64),
    "M": (256, 2, 32, 64),
    "L": (512, 2, 64, 100),
}
V = 65
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
KERNEL_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # change the kernel NumPy's OpenBLAS runs
PEER_OVERRIDES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                  "MKL_DEBUG_CPU_TYPE")  # the same for PyTorch's kernels: reported, not refused
UNSET = "env " + " ".join(f"-u {k}" for k in KERNEL_OVERRIDES)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="S,M,L", help="comma-separated names from S, M, L")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads for NumPy and torch.set_num_threads")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per measurement")
    ap.add_argument("--seconds", type=float, default=2.0, help="timed length of one side's round")
    ap.add_argument("--warmup", type=float, help="untimed calls first, for this long [default: half of --seconds]")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer even if it is installed")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: train, sample, eval, memory")
    ap.add_argument("--workers", type=int, default=0, help="training processes (0: as charlstm train chooses)")
    ap.add_argument("--doc", metavar="FILE", help="also rewrite the tables between the speed-table markers of "
                    "FILE (docs/performance.md)")
    ap.add_argument("--allow-overridden-kernel", action="store_true",
                    help=f"let --doc write from a run with {' or '.join(KERNEL_OVERRIDES)} set")
    ap.add_argument("--child-timeout", type=float, default=900.0, help="seconds before a child is stopped")
    # one child process's job; the parent passes these
    ap.add_argument("--worker", choices=["probe", "ours", "torch", "bound"], help=argparse.SUPPRESS)
    ap.add_argument("--part", choices=["train", "sample", "eval", "memory"], help=argparse.SUPPRESS)
    ap.add_argument("--config", choices=list(CONFIGS), help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--onednn", choices=["on", "off"], default="on", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.warmup is None:
        a.warmup = a.seconds / 2
    unknown = [c for c in a.configs.split(",") if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if a.threads < 1 or a.rounds < 1 or a.seconds <= 0 or a.warmup < 0 or a.workers < 0:
        ap.error("--threads and --rounds must be at least 1, --seconds positive, --warmup and --workers not negative")
    return a


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ======================================================================================= the children
# Each child does one side's round of one measurement and prints one JSON line. Nothing heavy is imported
# at module level: a training worker spawned by charlstm.parallel re-runs this module as __mp_main__.


class Clock:
    """Times of single calls: a warm-up of at least 2 calls and `warmup` seconds, not kept; then at least
    3 calls and `seconds`."""

    def __init__(self, seconds, warmup):
        self.seconds, self.warmup = seconds, warmup
        self.start, self.measuring_since = time.perf_counter(), None
        self.warmup_calls, self.times = 0, []

    def add(self, dt):
        """Record one call's time; True once enough are kept."""
        now = time.perf_counter()
        if self.measuring_since is None:
            self.warmup_calls += 1
            if self.warmup_calls >= 2 and now - self.start >= self.warmup:
                self.measuring_since = now
            return False
        self.times.append(dt)
        return len(self.times) >= 3 and now - self.measuring_since >= self.seconds

    def report(self, chars_per_call):
        median = statistics.median(self.times)
        return {"seconds_per_call": median, "calls": len(self.times), "warmup_calls": self.warmup_calls,
                "chars_per_call": chars_per_call, "chars_per_s": chars_per_call / median}


def timed(fn, seconds, warmup):
    clock = Clock(seconds, warmup)
    while True:
        t0 = time.perf_counter()
        fn()
        if clock.add(time.perf_counter() - t0):
            return clock


def blas_pools():
    """The thread pools loaded in this process as threadpoolctl sees them: BLAS library, kernel, threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        raise SystemExit("threadpoolctl is missing: pip install threadpoolctl (bench/speed.py needs it; "
                         "charlstm does not)") from None
    keys = ("user_api", "internal_api", "version", "architecture", "threading_layer", "num_threads", "filepath")
    return [{k: p.get(k) for k in keys} for p in threadpool_info()]


def numpy_info():
    import numpy as np

    import charlstm

    pools = [p for p in blas_pools() if p["user_api"] == "blas"]
    ours = next((p for p in pools if "numpy" in (p["filepath"] or "")), pools[0] if pools else {})
    return {"numpy": np.__version__, "charlstm": os.path.dirname(os.path.abspath(charlstm.__file__)),
            "blas": f"{ours.get('internal_api')} {ours.get('version')}", "blas_kernel": ours.get("architecture"),
            "blas_threads": ours.get("num_threads")}


def torch_info(torch):
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_onednn": torch.backends.mkldnn.is_available(), "torch_mkl": torch.backends.mkl.is_available()}


def import_torch(threads):
    import torch

    torch.set_num_threads(threads)
    return torch


def child_probe(a):
    """What a child gets: NumPy's BLAS, its kernel and threads, and PyTorch (None when it cannot load)."""
    info = numpy_info()  # before torch is imported: its libraries are not NumPy's
    if not a.no_torch:
        try:
            info.update(torch_info(import_torch(a.threads)))
        except ImportError as e:
            info["torch"], info["torch_missing"] = None, str(e)
    return info


# --------------------------------------------------------------------------------------------- training


class _Measured(Exception):
    """Raised through the Trainer's loop once the round has its step times."""


def ours_train(a, H, L, B, T):
    """The training step of `charlstm train`: its own Trainer, built by the function the CLI calls, runs its
    own loop; the bench only times the calls to train.train_step (a wrapper around the module's function,
    looked up by the loop at every step) and stops the loop by raising once it has enough of them."""
    import numpy as np

    from charlstm import launch
    from charlstm import train as train_mod

    real, clock = train_mod.train_step, Clock(a.seconds, a.warmup)

    def observed(*args, **kwargs):
        t0 = time.perf_counter()
        out = real(*args, **kwargs)
        if clock.add(time.perf_counter() - t0):
            raise _Measured
        return out

    with tempfile.TemporaryDirectory(prefix="charlstm-speed-") as d:
        corpus = os.path.join(d, "corpus.txt")
        ids = np.random.default_rng(0).integers(0, V, 1_000_000)
        with open(corpus, "w", encoding="utf-8") as fh:
            fh.write("".join(chr(32 + c) for c in ids))  # V distinct characters, none of them a newline
        never = 10**9  # no validation or checkpoint in the middle of a round: they are not the step
        overrides = [f"model.hidden={H}", f"model.layers={L}", f"data.batch={B}", f"data.window={T}",
                     f"train.workers={a.workers}", f"train.steps={never}", f"train.eval_every={never}",
                     f"train.save_every={never}"]
        trainer = launch.prepare([corpus], out=os.path.join(d, "run"), overrides=overrides, quiet=True)
        assert trainer.cfg.data.mode == "stream"  # every step trains on T*B targets
        train_mod.train_step = observed
        try:
            trainer.run()
        except _Measured:
            pass
        finally:
            train_mod.train_step = real
    workers = trainer.engine.workers
    return {**clock.report(T * B), "workers": workers}


def torch_train(a, torch, H, L, B, T):
    from charlstm.config import OptimConfig

    optim = OptimConfig()  # charlstm's defaults: Adam, its rate, its clipping
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(V, H, L)
    decoder = torch.nn.Linear(H, V)
    ps = list(lstm.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(ps, lr=optim.lr, betas=optim.betas, eps=optim.eps)
    x = torch.randint(0, V, (T, B))
    y = torch.randint(0, V, (T, B))
    box = {"state": None}

    def step():
        out, (h, c) = lstm(torch.nn.functional.one_hot(x, V).float(), box["state"])
        loss = torch.nn.functional.cross_entropy(decoder(out).reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ps, optim.clip)
        opt.step()
        box["state"] = (h.detach(), c.detach())

    return timed(step, a.seconds, a.warmup).report(T * B)


def gemm_bound(a, H, L, B, T):
    """Characters per second if a training window took only its matrix products, each at the speed
    NumPy's float32 GEMM reaches on that shape here; and the FLOPs per character."""
    import numpy as np

    G, N = 4 * H, T * B
    shapes = []  # (m, k, n, count): (m, k) @ (k, n)
    for k in range(L):
        shapes.append((B, H, G, T))  # forward recurrent, per step
        shapes.append((B, G, H, T - 1))  # backward recurrent, per step
        shapes.append((G, N, H, 1))  # dW_hh
        if k > 0:
            shapes += [(N, H, G, 1), (G, N, H, 1), (N, G, H, 1)]  # input projection, dW_ih, dX
    shapes += [(N, H, V, 1), (V, N, H, 1), (N, V, H, 1)]  # decoder forward, dW, dX
    rng = np.random.default_rng(0)
    total_time, flops, cache = 0.0, 0.0, {}
    for m, k, n, count in shapes:
        if (m, k, n) not in cache:
            x = rng.standard_normal((m, k)).astype(np.float32)
            w = rng.standard_normal((k, n)).astype(np.float32)
            out = np.empty((m, n), np.float32)
            clock = timed(lambda: np.matmul(x, w, out=out), a.seconds / len(shapes), a.warmup / len(shapes))
            cache[(m, k, n)] = statistics.median(clock.times)
        total_time += count * cache[(m, k, n)]
        flops += count * 2.0 * m * k * n
    return {"seconds_per_call": total_time, "chars_per_call": N, "chars_per_s": N / total_time,
            "gflop_per_char": flops / N / 1e9}


# -------------------------------------------------------------------------------------- sampling, eval


def ours_sample(a, H, L, batch, length):
    import numpy as np

    from charlstm import model, sample
    from charlstm.vocab import Vocab

    spec = model.Spec("lstm", V, H, L)
    params = model.init_params(spec, np.random.default_rng(0))
    packed = model.pack(params)
    vocab = Vocab(chr(32 + i) for i in range(V))
    requests = [sample.parse("A", i) for i in range(batch)]
    options = sample.Options(length=length)
    return timed(lambda: sample.generate(packed, vocab, requests, options, seed=0), a.seconds,
                 a.warmup).report(batch * length)


def torch_sample(a, torch, H, L, batch, length):
    onednn = a.onednn == "on"
    torch.manual_seed(0)
    lstm, decoder = torch.nn.LSTM(V, H, L), torch.nn.Linear(H, V)

    def run():
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=onednn):
            x = torch.zeros(batch, dtype=torch.long)
            state = None
            for _ in range(length + 1):
                out, state = lstm(torch.nn.functional.one_hot(x, V).float()[None], state)
                probs = torch.softmax(decoder(out[0]), dim=-1)
                x = torch.multinomial(probs, 1)[:, 0]

    return timed(run, a.seconds, a.warmup).report(batch * length)


def ours_eval(a, H, L, n_chars):
    """As `charlstm eval FILE` scores one file: one stream from the zero state, windows of 256."""
    import numpy as np

    from charlstm import evaluate, model
    from charlstm.workspace import Workspace

    spec = model.Spec("lstm", V, H, L)
    params = model.init_params(spec, np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, V, n_chars)
    work = Workspace()
    return timed(lambda: evaluate.score(params, [ids], 256, work), a.seconds, a.warmup).report(n_chars - 1)


def torch_eval(a, torch, H, L, n_chars):
    torch.manual_seed(0)
    lstm, decoder = torch.nn.LSTM(V, H, L), torch.nn.Linear(H, V)
    ids = torch.randint(0, V, (n_chars,))

    def run():
        with torch.no_grad():
            state, total = None, 0.0
            for s in range(0, n_chars - 1, 256):
                x, y = ids[s : min(s + 256, n_chars - 1)], ids[s + 1 : min(s + 257, n_chars)]
                out, state = lstm(torch.nn.functional.one_hot(x, V).float()[:, None], state)
                logp = torch.log_softmax(decoder(out[:, 0]), dim=-1)
                total -= logp[torch.arange(len(y)), y].sum().item()
            return total

    return timed(run, a.seconds, a.warmup).report(n_chars - 1)


EVAL_CHARS = 4096
SAMPLE_LENGTH = {1: 300, 64: 100}  # characters generated per call, by batch


# ---------------------------------------------------------------------------------------------- memory


def _pss_tree(pid):
    """Proportional set size (bytes) of a process and its children: shared pages counted once overall."""
    pids = [pid] + [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(int(p)) == pid]
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                total += 1024 * next(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def peak_memory(a, H, L, B, T):
    """Peak memory of `charlstm train` (a 1 MB corpus, a few steps), sampled every 20 ms as the summed
    proportional set size of its processes (worker processes included), against the interpreter
    baselines and the bytes that must exist: parameters, gradients, Adam moments, window buffers, corpus."""
    import numpy as np

    from charlstm import model
    from charlstm.data import Window
    from charlstm.numpyengine import LocalEngine
    from charlstm.parallel import auto_workers

    # the CLI with this checkout's charlstm first on the path, as in this process
    cli = f"import sys; sys.path.insert(0, {ROOT!r}); sys.argv[0] = 'charlstm'; from charlstm.cli import main; main()"
    probe = f"import sys; sys.path.insert(0, {ROOT!r}); import numpy, charlstm.launch, charlstm.cli, time; time.sleep(1.0)"
    base_proc = subprocess.Popen([sys.executable, "-c", probe])
    time.sleep(0.8)
    baseline = _pss_tree(base_proc.pid)
    base_proc.wait()
    with tempfile.TemporaryDirectory(prefix="charlstm-speed-") as d:
        corpus = os.path.join(d, "corpus.txt")
        rng = np.random.default_rng(0)
        with open(corpus, "w") as fh:
            fh.write("".join(chr(32 + c) for c in rng.integers(0, V, 1_000_000)))
        args = [corpus, "--out", os.path.join(d, "run"), "--steps", "4", "-q", "--set", f"model.hidden={H}",
                "--set", f"model.layers={L}", "--set", f"data.batch={B}", "--set", f"data.window={T}",
                "--set", "data.val_fraction=0.01", "--set", f"train.workers={a.workers}"]
        proc = subprocess.Popen([sys.executable, "-c", cli, "train", *args])
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _pss_tree(proc.pid))
            time.sleep(0.02)
        if proc.returncode:
            raise RuntimeError(f"charlstm train exited with status {proc.returncode}")
    # the buffers of one process doing the whole batch
    spec = model.Spec("lstm", V, H, L)
    params = model.init_params(spec, rng)
    engine = LocalEngine(spec)
    window = Window(rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B)))
    engine.forward_backward(params, window, model.zero_state(spec, B))  # allocates the window buffers
    n_params = sum(p.size for p in params.values())
    needed = 4 * n_params * 4 + engine.work.nbytes() + 1_000_000  # params, grads, 2 moments; buffers; corpus ids
    used = a.workers or auto_workers(spec, B)
    processes = 1 + used if used > 1 else 1  # the main process and its workers
    return {"peak_mb": peak / 2**20, "baseline_mb": baseline / 2**20, "processes": processes,
            "needed_mb": needed / 2**20, "ratio": (peak - processes * baseline) / needed}


def child_main(a):
    # the parent stops a child with SIGTERM: unwind, so temporary files and worker processes are cleaned
    # up (the Trainer's own handler takes over while its loop runs: it stops after the step)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    try:
        if a.worker == "probe":
            report = child_probe(a)
        else:
            H, L, B, T = CONFIGS[a.config]
            torch = import_torch(a.threads) if a.worker == "torch" else None  # first, as a PyTorch script does
            report = {"worker": a.worker, "part": a.part, "config": a.config,
                      **(torch_info(torch) if torch else numpy_info())}
            report.update(run_part(a, torch, H, L, B, T))
    except SystemExit:
        raise
    except BaseException as e:
        import traceback

        traceback.print_exc()
        log(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))
        return 1
    print(json.dumps(report), flush=True)
    return 0


def run_part(a, torch, H, L, B, T):
    if a.worker == "bound":
        return gemm_bound(a, H, L, B, T)
    if a.part == "train":
        return torch_train(a, torch, H, L, B, T) if torch else ours_train(a, H, L, B, T)
    if a.part == "sample":
        length = SAMPLE_LENGTH[a.batch]
        return torch_sample(a, torch, H, L, a.batch, length) if torch else ours_sample(a, H, L, a.batch, length)
    if a.part == "eval":
        return torch_eval(a, torch, H, L, EVAL_CHARS) if torch else ours_eval(a, H, L, EVAL_CHARS)
    return peak_memory(a, H, L, B, T)


# ========================================================================================= the parent


class ChildFailed(Exception):
    """A child exited with an error or was stopped; the message is one line."""


class Stop(BaseException):
    """SIGTERM or SIGHUP to the parent: handled as Ctrl-C is."""


class Runner:
    """Starts children with the thread count set and this environment otherwise unchanged, one at a time,
    each in its own process group so that stopping one stops its worker processes too."""

    def __init__(self, a):
        self.a = a
        self.env = dict(os.environ)
        for var in THREAD_ENV:  # read by the BLAS and OpenMP runtimes when they load
            self.env[var] = str(a.threads)
        self.errors = []

    def common(self):
        a = self.a
        return ["--threads", str(a.threads), "--seconds", repr(a.seconds), "--warmup", repr(a.warmup),
                "--workers", str(a.workers)] + (["--no-torch"] if a.no_torch else [])

    def run(self, what, args, env=None):
        """The child's JSON report; ChildFailed with one line if it fails."""
        cmd = [sys.executable, os.path.abspath(__file__), *args, *self.common()]
        proc = subprocess.Popen(cmd, env=env or self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=self.a.child_timeout)
        except subprocess.TimeoutExpired:
            self.stop(proc)
            raise ChildFailed(f"{what}: no result after {self.a.child_timeout:g} s; stopped") from None
        except BaseException:  # Ctrl-C, SIGTERM: stop the child before anything else
            self.stop(proc)
            raise
        if proc.returncode != 0:
            last = next((line for line in reversed(err.splitlines()) if line.strip()), "no message")
            raise ChildFailed(f"{what} failed (exit status {proc.returncode}): {last.strip()}")
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise ChildFailed(f"{what} printed no result") from None

    @staticmethod
    def stop(proc):
        """SIGTERM to the child's process group (a training child finishes its step, closes its workers and
        removes its files), then, after at most 15 seconds or at a second Ctrl-C, SIGKILL to whatever of
        the group is left."""
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except (subprocess.TimeoutExpired, KeyboardInterrupt, Stop):
                pass
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # the group is gone
            pass
        proc.wait()


def rounds(runner, name, part, sides):
    """sides: {label: child arguments}. Rounds of one fresh process per side in turn; returns the median
    over rounds of chars/s per label (None for a side that failed or was not run), the per-round figures
    and each side's last report. A side whose child fails is reported and left out of later rounds."""
    a = runner.a
    figures = {label: [] for label in sides}
    reports, failed = {}, set()
    for r in range(a.rounds):
        for label, args in sides.items():
            if label in failed:
                continue
            what = f"{name} {part} {label} (round {r + 1})"
            try:
                report = runner.run(what, args)
            except ChildFailed as e:
                log(f"error: {e}")
                runner.errors.append(str(e))
                failed.add(label)
                continue
            figures[label].append(report["chars_per_s"])
            reports[label] = report
        log(f"{name} {part} round {r + 1}/{a.rounds}: "
            + ", ".join(f"{label} {figures[label][-1]:,.0f}" for label in sides if len(figures[label]) == r + 1)
            + " chars/s")
    medians = {label: (statistics.median(v) if v else None) for label, v in figures.items()}
    return medians, {label: [round(x) for x in v] for label, v in figures.items()}, reports


def command_line(a, overrides):
    """The command that repeats this run: the kernel variables as they were (unset when they were not)."""
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in overrides.items()) if overrides else UNSET
    return f"{env} python bench/speed.py {shlex.join(sys.argv[1:])}".rstrip()


def probe_environment(runner):
    """What the children get, and the kernel OpenBLAS picks with the override variables removed."""
    a = runner.a
    got = runner.run("probe", ["--worker", "probe"])
    native_env = {k: v for k, v in runner.env.items() if k not in KERNEL_OVERRIDES}
    native = runner.run("probe without the kernel variables", ["--worker", "probe", "--no-torch"], env=native_env)
    overrides = {k: os.environ[k] for k in KERNEL_OVERRIDES if k in os.environ}
    run = {"date": datetime.date.today().isoformat(), "command": command_line(a, overrides), "argv": sys.argv,
           "python": sys.executable, "charlstm": got["charlstm"], "threads": a.threads, "numpy": got["numpy"],
           "blas": got["blas"], "blas_kernel": got["blas_kernel"], "blas_threads": got["blas_threads"],
           "blas_kernel_native": native["blas_kernel"], "kernel_overrides": overrides,
           "kernel_overridden": bool(overrides) or got["blas_kernel"] != native["blas_kernel"],
           "torch": got.get("torch"), "torch_threads": got.get("torch_threads"),
           "torch_cpu_capability": got.get("torch_cpu_capability"),
           "peer_overrides": {k: os.environ[k] for k in PEER_OVERRIDES if k in os.environ}}
    if got.get("torch_missing"):
        run["torch_missing"] = got["torch_missing"]
    return run


def kernel_lines(run):
    """The kernel line, and the loud warnings."""
    torch = (f"PyTorch {run['torch']}: {run['torch_threads']} threads, ATen {run['torch_cpu_capability']}"
             if run["torch"] else f"PyTorch: none ({run.get('torch_missing', '--no-torch')}; peer fields null)")
    lines = [f"NumPy {run['numpy']} on {run['blas']}: kernel {run['blas_kernel']}, {run['blas_threads']} threads "
             f"(without {' and '.join(KERNEL_OVERRIDES)}: {run['blas_kernel_native']}); {torch}; "
             f"charlstm from {run['charlstm']}"]
    warnings = []
    if run["kernel_overridden"]:
        set_ = " ".join(f"{k}={v}" for k, v in run["kernel_overrides"].items()) or "nothing visible"
        if run["blas_kernel"] != run["blas_kernel_native"]:
            what = f"runs OpenBLAS's {run['blas_kernel']} kernel, not the {run['blas_kernel_native']} kernel " \
                   f"it picks for this processor"
        else:
            what = f"runs OpenBLAS's {run['blas_kernel']} kernel, with its parameters set by hand"
        warnings += [f"WARNING: the BLAS kernel is overridden ({set_}): NumPy {what}.",
                     "WARNING: users' machines don't set these; figures from this run are not what users get. "
                     "Measure as users run:",
                     f"WARNING:     {UNSET} python bench/speed.py ..."]
    if run["threads"] != run["blas_threads"] or (run["torch"] and run["threads"] != run["torch_threads"]):
        warnings.append(f"WARNING: asked for {run['threads']} threads; NumPy has {run['blas_threads']}"
                        + (f", PyTorch {run['torch_threads']}" if run["torch"] else ""))
    if run["peer_overrides"]:
        warnings.append("WARNING: PyTorch's kernels are overridden: "
                        + " ".join(f"{k}={v}" for k, v in run["peer_overrides"].items()))
    if os.path.realpath(run["charlstm"]) != os.path.realpath(os.path.join(ROOT, "charlstm")):
        warnings.append(f"WARNING: charlstm comes from {run['charlstm']}, not from this checkout ({ROOT})")
    if warnings:
        bar = "!" * 100
        warnings = [bar, *warnings, bar]
    return lines, warnings


def check_doc(a, run):
    """None, or the one-line reason --doc may not write from this run."""
    if run["kernel_overridden"] and not a.allow_overridden_kernel:
        why = " ".join(f"{k}={v}" for k, v in run["kernel_overrides"].items()) or \
            f"kernel {run['blas_kernel']}, not {run['blas_kernel_native']}"
        return (f"not writing {a.doc} from a run on an overridden BLAS kernel ({why}); run `{UNSET} python "
                f"bench/speed.py ...`, or pass --allow-overridden-kernel")
    return None


def measure_config(runner, name, run):
    a = runner.a
    skip = set(filter(None, a.skip.split(",")))
    torch = run["torch"] is not None
    H, L, B, T = CONFIGS[name]
    row = {"config": name, "H": H, "L": L, "B": B, "T": T, "V": V, "threads": a.threads}
    per_round = {}
    base = ["--config", name]
    if "train" not in skip:
        sides = {"ours": ["--worker", "ours", "--part", "train", *base]}
        if torch:
            sides["torch"] = ["--worker", "torch", "--part", "train", *base]
        sides["bound"] = ["--worker", "bound", "--part", "train", *base]
        r, per_round["train"], reports = rounds(runner, name, "train", sides)
        ours, theirs, bound = r["ours"], r.get("torch"), r["bound"]
        row.update({"train_chars_per_s": _round(ours), "torch_train_chars_per_s": _round(theirs),
                    "train_ratio": _ratio(ours, theirs), "gemm_bound_chars_per_s": _round(bound),
                    "gemm_fraction": _ratio(ours, bound), "torch_gemm_fraction": _ratio(theirs, bound),
                    "gflop_per_char": reports.get("bound", {}).get("gflop_per_char"),
                    "train_workers": reports.get("ours", {}).get("workers")})
        if ours and bound and ours > bound:  # small products with two BLAS threads on a busy machine spin
            log(f"WARNING: {name}: the GEMM bound ({bound:,.0f} chars/s) is below the training speed: "
                "was the machine busy?")
        check_kernels(runner, run, reports)
    if "sample" not in skip:
        for batch in SAMPLE_LENGTH:
            args = ["--part", "sample", "--batch", str(batch), *base]
            sides = {"ours": ["--worker", "ours", *args]}
            if torch:
                sides["torch_on"] = ["--worker", "torch", "--onednn", "on", *args]
                sides["torch_off"] = ["--worker", "torch", "--onednn", "off", *args]
            r, per_round[f"sample_b{batch}"], reports = rounds(runner, name, f"sample b{batch}", sides)
            best = max(r.get("torch_on") or 0, r.get("torch_off") or 0) or None
            row.update({f"sample_b{batch}_chars_per_s": _round(r["ours"]),
                        f"torch_sample_b{batch}_onednn_on": _round(r.get("torch_on")),
                        f"torch_sample_b{batch}_onednn_off": _round(r.get("torch_off")),
                        f"sample_b{batch}_ratio_to_faster": _ratio(r["ours"], best)})
            check_kernels(runner, run, reports)
    if "eval" not in skip:
        sides = {"ours": ["--worker", "ours", "--part", "eval", *base]}
        if torch:
            sides["torch"] = ["--worker", "torch", "--part", "eval", *base]
        r, per_round["eval"], reports = rounds(runner, name, "eval", sides)
        row.update({"eval_chars_per_s": _round(r["ours"]), "torch_eval_chars_per_s": _round(r.get("torch")),
                    "eval_ratio": _ratio(r["ours"], r.get("torch"))})
        check_kernels(runner, run, reports)
    if "memory" not in skip and name == "L":
        log(f"{name}: peak memory of charlstm train ...")
        try:
            m = runner.run(f"{name} memory", ["--worker", "ours", "--part", "memory", *base])
            row["memory"] = {k: round(m[k], 2) for k in ("peak_mb", "baseline_mb", "processes", "needed_mb", "ratio")}
        except ChildFailed as e:
            log(f"error: {e}")
            runner.errors.append(str(e))
    row["rounds"] = per_round
    row["run"] = run
    return row


def check_kernels(runner, run, reports):
    """Every child must have got the kernel and threads the probe saw."""
    for label, rep in reports.items():
        if rep["worker"] == "torch":
            if rep["torch_threads"] != run["threads"]:
                log(f"WARNING: {rep['config']} {rep['part']} {label}: PyTorch ran {rep['torch_threads']} threads")
            continue
        got = (rep.get("blas_kernel"), rep.get("blas_threads"))
        if got != (run["blas_kernel"], run["blas_threads"]):
            message = (f"{rep['config']} {rep['part']} {label}: NumPy got kernel {got[0]} with {got[1]} threads, "
                       f"not {run['blas_kernel']} with {run['blas_threads']}")
            log(f"WARNING: {message}")
            run.setdefault("kernel_mismatches", []).append(message)
            run["kernel_overridden"] = run["kernel_overridden"] or got[0] != run["blas_kernel_native"]


def main():
    a = parse_args()
    if a.worker:
        return child_main(a)

    def stop(signum, frame):
        raise Stop(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    runner = Runner(a)
    try:
        if a.doc and _read_doc(a.doc).startswith("error:"):  # before an hour of measuring, not after
            log(f"speed.py: {_read_doc(a.doc)[len('error: '):]}")
            return 2
        try:
            run = probe_environment(runner)
        except ChildFailed as e:
            log(f"speed.py: {e}")
            return 2
        lines, warnings = kernel_lines(run)
        for line in [*lines, *warnings]:
            log(line)
        if a.doc and check_doc(a, run):
            log(f"speed.py: {check_doc(a, run)}")
            return 2
        rows = []
        for name in a.configs.split(","):
            row = measure_config(runner, name, run)
            print(json.dumps(row), flush=True)
            rows.append(row)
        log(f"\n{markdown(run, rows)}\n")
        for line in warnings:  # again, where it will be seen
            log(line)
        if runner.errors:
            log(f"speed.py: {len(runner.errors)} measurement(s) failed; their figures are missing")
        if a.doc:
            reason = check_doc(a, run) or (runner.errors and f"not writing {a.doc}: {len(runner.errors)} "
                                           "measurement(s) failed")
            if reason:
                log(f"speed.py: {reason}")
                return 2
            update_doc(a, run, rows)
        return 1 if runner.errors else 0
    except (KeyboardInterrupt, Stop) as e:
        code = 143 if isinstance(e, Stop) else 130
        log("speed.py: interrupted; its running child was stopped" + (f"; {a.doc} not written" if a.doc else ""))
        return code


# ============================================================================================ the page


def markdown(run, rows):
    """The tables of docs/performance.md: chars/s, ours against PyTorch, per configuration."""
    def num(x):
        return "-" if x is None else f"{x:,}"

    def ratio(x):
        return "-" if x is None else f"{x:.2f}x"

    def frac(x):
        return "-" if x is None else f"{x:.2f}"

    kernel = f"OpenBLAS kernel {run['blas_kernel']}"
    if run["kernel_overridden"]:
        kernel += (f", forced ({' '.join(f'{k}={v}' for k, v in run['kernel_overrides'].items())}; "
                   f"this processor's own is {run['blas_kernel_native']})")
    else:
        kernel += " (the processor's own)"
    torch = f"torch {run['torch']} with {run['torch_threads']} threads" if run["torch"] else "no torch"
    out = [f"Measured {run['date']}, {kernel}, {run['threads']} threads, each side in its own process: "
           f"`{run['command']}` ({torch}, numpy {run['numpy']}, blas {run['blas']}).", "",
           "| config | H | L | B | T | charlstm train | PyTorch train | ratio | GEMM bound | charlstm / bound | "
           "PyTorch / bound | workers |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "train_chars_per_s" in r:
            out.append(f"| {r['config']} | {r['H']} | {r['L']} | {r['B']} | {r['T']} | {num(r['train_chars_per_s'])} | "
                       f"{num(r['torch_train_chars_per_s'])} | {ratio(r['train_ratio'])} | "
                       f"{num(r['gemm_bound_chars_per_s'])} | {frac(r['gemm_fraction'])} | "
                       f"{frac(r['torch_gemm_fraction'])} | {r['train_workers'] or '-'} |")
    out += ["", "| config | sample b1 | PyTorch b1 oneDNN on / off | ratio to faster | sample b64 | "
            "PyTorch b64 on / off | ratio | eval | PyTorch eval | ratio |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "sample_b1_chars_per_s" in r or "eval_chars_per_s" in r:
            g = r.get
            out.append(f"| {r['config']} | {num(g('sample_b1_chars_per_s'))} | {num(g('torch_sample_b1_onednn_on'))} / "
                       f"{num(g('torch_sample_b1_onednn_off'))} | {ratio(g('sample_b1_ratio_to_faster'))} | "
                       f"{num(g('sample_b64_chars_per_s'))} | {num(g('torch_sample_b64_onednn_on'))} / "
                       f"{num(g('torch_sample_b64_onednn_off'))} | {ratio(g('sample_b64_ratio_to_faster'))} | "
                       f"{num(g('eval_chars_per_s'))} | {num(g('torch_eval_chars_per_s'))} | {ratio(g('eval_ratio'))} |")
    for r in rows:
        if "memory" in r:
            m = r["memory"]
            out += ["", f"Peak memory of `charlstm train` on {r['config']} ({m['processes']} processes): "
                    f"{m['peak_mb']:.0f} MB proportional set size, of which {m['processes']} x {m['baseline_mb']:.0f} MB "
                    f"interpreter baseline; parameters, gradients, Adam moments and window buffers need "
                    f"{m['needed_mb']:.0f} MB: ratio {m['ratio']:.2f}."]
    return "\n".join(out)


BEGIN, END = "<!-- speed-table -->", "<!-- /speed-table -->"


def _read_doc(path):
    """The page's text, or "error: ..." when it cannot be rewritten (checked before measuring)."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        return f"error: cannot read {path}: {e.strerror}"
    if BEGIN not in text or END not in text:
        return f"error: {path} has no {BEGIN} ... {END} markers to write the tables between"
    return text


def update_doc(a, run, rows):
    text = _read_doc(a.doc)
    if text.startswith("error:"):
        log(f"speed.py: {text[len('error: '):]}")
        return
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    with open(a.doc, "w", encoding="utf-8") as fh:
        fh.write(f"{head}{BEGIN}\n{markdown(run, rows)}\n{END}{tail}")
    log(f"{a.doc}: tables rewritten")


def _round(x):
    return None if x is None else round(x)


def _ratio(a, b):
    return None if not a or not b else round(a / b, 3)


if __name__ == "__main__":
    sys.exit(main())

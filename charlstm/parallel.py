"""Data parallelism over the streams of a batch, in worker processes: the engine (see engine.py) that
puts every core to work on a training step.

A window's forward and backward passes are independent from stream to stream, so P workers each run
them on B/P of the streams, with a one-thread BLAS each, and the main process adds their gradients.
Processes, not threads: a step makes thousands of small NumPy calls, and threads trade the GIL after
each of them (docs/performance.md). Everything that crosses between processes lives in one block of
shared memory (the parameters the optimizer updates in place, each worker's gradients, the window, the
carried state), so a step is one short message to each worker and one reply.

Stopping is the main process's business: workers ignore SIGINT and SIGTERM, which reach the whole
process group, and end quietly when told to or when the main process stops listening, even mid-step.
"""

import atexit
import multiprocessing
import os
import signal
import traceback
from multiprocessing import shared_memory

try:
    import resource  # POSIX only
except ImportError:
    resource = None

import numpy as np

from . import blaswarmup, model
from .cells import CELLS
from .data import Window
from .errors import TrainingError
from .numpyengine import NumpyEngine
from .workspace import Workspace

BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
BLOCKING = hasattr(signal, "pthread_sigmask")


SHM_DIR = "/dev/shm"  # where Linux keeps POSIX shared memory (a tmpfs; Docker's default is 64 MB)
SHM_SPARE = 1.25, 16 << 20  # room kept free besides the block: a quarter more, and 16 MB for everyone else


def shm_free():
    """(bytes free for shared memory, what limits it), or None where there is nothing to ask (no
    /dev/shm, as on macOS). A block larger than the free space is created all the same (tmpfs reserves
    nothing) and the first write past the space kills the process with SIGBUS; one larger than the file
    size limit (ulimit -f) fails to be created with EFBIG, and Python's resource tracker then prints a
    traceback of its own. So the space is checked before, never found out."""
    try:
        st = os.statvfs(SHM_DIR)
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    where = f"{SHM_DIR} has {free / 2**20:.0f} MB free (docker run --shm-size=1g gives it more)"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else -1
    if 0 <= limit < free:  # RLIM_INFINITY is -1
        free, where = limit, f"the file size limit (ulimit -f) is {limit / 2**20:.0f} MB"
    return free, where


def shm_shortfall(spec, batch, window, workers, dtype=np.float32):
    """None when the shared block for these workers fits in /dev/shm with room to spare; otherwise a note
    that says what is short."""
    found = shm_free()
    need = Layout(spec, batch, window, workers, dtype).nbytes
    if found is None or found[0] >= need * SHM_SPARE[0] + SHM_SPARE[1]:
        return None
    return (f"too little shared memory for the {need / 2**20:.0f} MB that {workers} worker processes share: "
            f"{found[1]}; training in one process")


def auto_workers(spec, batch):
    """Workers worth starting: one per core (two at most), for models big enough that a step outlasts
    the messages, with a batch that splits evenly."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2 or spec.hidden < 128 or batch < 16 or batch % 2:
        return 1
    return 2


class Layout:
    """Named arrays at fixed offsets of one shared buffer; the same in every process."""

    def __init__(self, spec, batch, window, workers, dtype):
        cell = CELLS[spec.cell]
        shapes = model.param_shapes(spec)
        self.entries = []  # (name, shape, dtype)
        self.entries += [(f"param/{k}", s, dtype) for k, s in shapes.items()]
        for w in range(workers):
            self.entries += [(f"grad{w}/{k}", s, dtype) for k, s in shapes.items()]
        self.entries += [("x", (window, batch), np.int32), ("y", (window, batch), np.int32),
                         ("mask", (window, batch), dtype),
                         ("state_in", (len(cell.STATE), spec.layers, batch, spec.hidden), dtype),
                         ("state_out", (len(cell.STATE), spec.layers, batch, spec.hidden), dtype),
                         ("loss", (workers,), np.float64)]
        self.nbytes = sum(_aligned(int(np.prod(s)) * np.dtype(d).itemsize) for _, s, d in self.entries)

    def views(self, buf):
        out, offset = {}, 0
        for name, shape, dtype in self.entries:
            size = int(np.prod(shape)) * np.dtype(dtype).itemsize
            out[name] = np.ndarray(shape, dtype, buf, offset)
            offset += _aligned(size)
        return out


def _aligned(n):
    return (n + 63) // 64 * 64


class ParallelEngine(NumpyEngine):
    """Forward and backward of a window over `workers` processes; `params` are the shared arrays to train
    (`share` copies the weights into them)."""

    def __init__(self, spec, batch, window, workers, dtype=np.float32):
        super().__init__()
        self.spec, self.batch, self.workers = spec, batch, workers
        self.layout = Layout(spec, batch, window, workers, dtype)
        self.shm = shared_memory.SharedMemory(create=True, size=self.layout.nbytes)
        self.arrays = self.layout.views(self.shm.buf)
        self.params = {k[len("param/"):]: a for k, a in self.arrays.items() if k.startswith("param/")}
        self.grads = {k: np.empty_like(a) for k, a in self.params.items()}
        bounds = np.linspace(0, batch, workers + 1).astype(int)
        self.slices = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
        self.procs, self.conns = [], []
        atexit.register(self.close)  # runs before multiprocessing's exit handler, registered at its import
        try:
            self._start(spec, batch, window, workers, dtype)
        except BaseException:
            self.close()
            raise

    def _start(self, spec, batch, window, workers, dtype):
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited BLAS threads
        saved = {k: os.environ.get(k) for k in BLAS_ENV}
        # a worker inherits the blocked signals; a Ctrl-C meanwhile waits here, for the main process only
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if BLOCKING else None
        try:
            for k in BLAS_ENV:  # read by the worker's BLAS when it is imported: one thread each
                os.environ[k] = "1"
            for w, (b0, b1) in enumerate(self.slices):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(child, self.shm.name, spec, batch, window, workers, dtype,
                                                         w, b0, b1), daemon=True)
                proc.start()
                child.close()
                self.procs.append(proc)
                self.conns.append(parent)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            if mask is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for conn in self.conns:
            self._reply(conn)  # ready

    def share(self, params):
        """The shared arrays, holding a copy of params: what the optimizer must update from now on."""
        for k, v in params.items():
            np.copyto(self.params[k], v)
        return self.params

    def forward_backward(self, params, window, state, dropout=None):
        """(loss, new state, grads) for the window, as model.forward + model.backward over all streams
        would give them (up to float rounding: each worker's matrix products see fewer rows). params must
        be the shared arrays: they are what the workers read."""
        assert params is self.params, "train the arrays that share() returned"
        x, y, mask = window
        T = x.shape[0]
        a = self.arrays
        a["x"][:T] = x
        a["y"][:T] = y
        a["mask"][:T] = 1.0 if mask is None else mask
        for j, s in enumerate(state):
            a["state_in"][j] = s
        total = float(x.size if mask is None else mask.sum(dtype=np.float64)) or 1.0
        for conn in self.conns:
            conn.send(("step", T, mask is not None, total, dropout))
        for conn in self.conns:
            self._reply(conn)
        for k, g in self.grads.items():  # the sum over workers of their slices' gradients
            np.copyto(g, a[f"grad0/{k}"])
            for w in range(1, self.workers):
                g += a[f"grad{w}/{k}"]
        loss = float(a["loss"].sum())
        new_state = tuple(a["state_out"][j].copy() for j in range(a["state_out"].shape[0]))
        return loss, new_state, self.grads

    def _reply(self, conn):
        try:
            kind, payload = conn.recv()
        except EOFError:
            raise TrainingError("a training worker process died (out of memory?); the last checkpoint is intact") from None
        if kind == "error":
            raise TrainingError(f"a training worker failed: {payload}")

    def close(self):
        if self.shm is None:  # closed already
            return
        for conn in self.conns:
            try:
                conn.send(None)
                conn.close()
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self.arrays = None
        try:
            self.shm.close()
        except BufferError:  # the trainer still holds views of the parameters; the mapping goes with it
            pass
        shm, self.shm = self.shm, None  # closed from here on, should a Ctrl-C land in the unlink
        shm.unlink()
        atexit.unregister(self.close)  # only now: a Ctrl-C that cut this short leaves the exit handler to finish

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _worker(conn, shm_name, spec, batch, window, workers, dtype, w, b0, b1):
    # Ctrl-C, `timeout` or `kill -- -PGID` signal the whole process group: the main process saves and then
    # stops its workers, which must live until it does (they end on a None or when its end of the pipe
    # closes, so they do not outlive a main process that is killed outright; see the module docstring).
    # The signals were blocked when this process started: ignore them, then let through what is pending.
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if BLOCKING:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    # attaching registers the block again with the resource tracker the main process shares with its
    # workers: a no-op there; the main process unregisters it when it unlinks the block
    shm = shared_memory.SharedMemory(name=shm_name)
    try:
        a = Layout(spec, batch, window, workers, dtype).views(shm.buf)
        params = {k[len("param/"):]: v for k, v in a.items() if k.startswith("param/")}
        grads = {k: a[f"grad{w}/{k}"] for k in params}
        work = Workspace()
        blaswarmup.warm_up()
        reply = ("ready", None)
        while _send(conn, reply):
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            try:
                _, T, masked, total, dropout = message
                window = Window(a["x"][:T, b0:b1].astype(np.intp), a["y"][:T, b0:b1].astype(np.intp),
                                a["mask"][:T, b0:b1] if masked else None)
                state = tuple(np.ascontiguousarray(s[:, b0:b1]) for s in a["state_in"])
                if dropout is not None:  # each worker its own masks: the seed extended by its first stream
                    dropout = dropout.extended(b0)
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # the trainer reports NaN
                    loss, new_state, cache = model.forward(params, window, state, work, dropout,
                                                           model.pack(params, spec), total)
                    for k, g in model.backward(params, cache, work).items():
                        np.copyto(grads[k], g)
                for j, s in enumerate(new_state):
                    a["state_out"][j, :, b0:b1] = s
                a["loss"][w] = loss
                reply = ("ok", None)
            except Exception:
                reply = ("error", traceback.format_exc(limit=3).strip().splitlines()[-1])
    finally:
        conn.close()  # the mapping goes with the process


def _send(conn, reply):
    """Send a reply; False if the main process has stopped listening (it closed its end of the pipe, say
    to stop in the middle of a step after a Ctrl-C, or it is gone): then the worker just ends."""
    try:
        conn.send(reply)
    except OSError:  # BrokenPipeError, ConnectionResetError
        return False
    return True

"""Shared timing helpers of the speed benchmarks (bench/speed.py and its measurements, bench/speed_*.py),
and the probe: run alone, it prints, as one JSON line, what a process started like this gets: the CPU
(runner.cpu), NumPy's BLAS library, kernel and threads, and PyTorch's threads and kernels (null without
PyTorch).

    python bench/timing.py [--threads 2] [--no-torch]      # needs threadpoolctl

A measurement script is one side of one round (bench/speed.py starts a fresh process for each, in turn):
it warms up (at least 2 calls and --warmup seconds), then times single calls for at least --seconds (and
3 calls), and prints one JSON line: the median call's time and characters per second, with the CPU, BLAS
and PyTorch it ran on. Nothing heavy is imported at module level: a training worker spawned by
charlstm.parallel re-runs the measuring script as __mp_main__.
"""

import argparse
import json
import os
import signal
import statistics
import sys
import time

import runner  # bench/runner.py, beside this script: charlstm from this checkout

CONFIGS = {  # name: (H, L, B, T)
    "S": (128, 1, 32, 64),
    "M": (256, 2, 32, 64),
    "L": (512, 2, 64, 100),
}
V = 65  # the vocabulary of every measurement
ROOT = str(runner.ROOT)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


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


def probe(a):
    """What a child gets: the CPU, NumPy's BLAS, its kernel and threads, and PyTorch (None when it cannot load)."""
    info = {"cpu": runner.cpu(), **numpy_info()}  # NumPy's before torch is imported: its libraries are not NumPy's
    if not a.no_torch:
        try:
            info.update(torch_info(import_torch(a.threads)))
        except ImportError as e:
            info["torch"], info["torch_missing"] = None, str(e)
    return info


def child_parser(doc, sides):
    """The options every measurement script takes (bench/speed.py passes them): which side, which shape,
    threads and timing."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", choices=sides, default=sides[0], help="what is measured [default: %(default)s]")
    ap.add_argument("--config", choices=list(CONFIGS), default="M",
                    help="the shape: " + ", ".join(f"{k} = H {h}, L {l}, B {b}, T {t}" for k, (h, l, b, t)
                                                   in CONFIGS.items()) + " [default: %(default)s]")
    add_common(ap)
    return ap


def add_common(ap):
    """Options the parent and every child share."""
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads for NumPy and torch.set_num_threads "
                                                            "[default: %(default)s]")
    ap.add_argument("--seconds", type=float, default=2.0, help="timed length of one side's round [default: "
                                                                "%(default)s]")
    ap.add_argument("--warmup", type=float, help="untimed calls first, for this long [default: half of --seconds]")
    ap.add_argument("--workers", type=int, default=0, help="training processes (0: as charlstm train chooses)")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer even if it is installed")


def run_child(a, part, measure):
    """One side's round, as a script's main: measure(a, torch, H, L, B, T) (torch None for NumPy's sides),
    printed as one JSON line with what it ran on. A failure is one line on stderr and status 1. The
    parent stops a child with SIGTERM: it unwinds, so temporary files and worker processes are cleaned
    up (the Trainer's own handler takes over while its loop runs: it stops after the step)."""
    if a.warmup is None:
        a.warmup = a.seconds / 2
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    try:
        H, L, B, T = CONFIGS[a.config]
        torch = import_torch(a.threads) if a.side in ("torch", "padded") else None  # first, as PyTorch scripts do
        report = {"worker": a.side, "part": part, "config": a.config, "cpu": runner.cpu(),
                  **(torch_info(torch) if torch else numpy_info())}
        report.update(measure(a, torch, H, L, B, T))
    except SystemExit:
        raise
    except BaseException as e:
        import traceback

        traceback.print_exc()
        log(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": "))
        return 1
    print(json.dumps(report), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common(ap)  # as bench/speed.py passes them to every child; the probe reads --threads and --no-torch
    print(json.dumps(probe(ap.parse_args())), flush=True)


if __name__ == "__main__":
    main()

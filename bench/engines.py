"""The NumPy engine against the torch engine on this machine: characters per second of `charlstm train`
itself, for a few model sizes, as docs/scale.md reports them.

Each (size, engine, threads) is its own `charlstm train --time-budget` on the corpus (a 2-layer LSTM,
batch 32 x window 64 by default, no validation or checkpoint during the run); the figure is the median
of metrics.jsonl's chars_per_s over its intervals, the first one (allocations, start-up) left out.
Threads: 1 is one core each (OPENBLAS_NUM_THREADS=1 and train.workers=1 for NumPy, OMP_NUM_THREADS=1 for
PyTorch); 2 is two cores (NumPy's two worker processes, PyTorch's two intra-op threads). The load
average before each run is printed with it: on a shared machine the figures move with it.

    python bench/engines.py CORPUS [--sizes 256 512 1024] [--threads 1 2] [--seconds 40]   # needs torch
"""

import os
import statistics
import sys
import tempfile

import runner  # bench/runner.py, beside this script


def measure(corpus, engine, hidden, threads, seconds, layers, extra):
    """The median chars/s of one `charlstm train` of the engine (the first interval left out)."""
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": "1"}
    never = 10**9
    with tempfile.TemporaryDirectory(prefix="charlstm-engines-") as d:
        proc = runner.train(corpus, d, "--engine", engine, "--steps", never, "--time-budget", f"{seconds}s", env=env,
                            sets=[f"model.hidden={hidden}", f"model.layers={layers}", "train.log_every=5",
                                  f"train.eval_every={never}", f"train.save_every={never}", "train.val_max_chars=1000",
                                  f"train.workers={1 if threads == 1 else 0}", *extra])
        if proc.returncode:
            sys.exit(f"engines.py: {engine} at H={hidden} failed: {runner.failure(proc)}")
        speeds = [r["chars_per_s"] for r in runner.metrics(d) if "chars_per_s" in r]
    return statistics.median(speeds[1:] or speeds), len(speeds)


def main():
    ap = runner.parser(__doc__)
    ap.add_argument("corpus", help="the training text")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024], help="hidden sizes [default: "
                                                                                     "256 512 1024]")
    ap.add_argument("--threads", type=int, nargs="+", default=[1], help="cores per run [default: 1]")
    ap.add_argument("--seconds", type=int, default=40, help="each run's budget [default: %(default)s]")
    ap.add_argument("--layers", type=int, default=2, help="[default: %(default)s]")
    ap.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="more config overrides for every run")
    a = ap.parse_args()
    print(runner.markdown(["H", "threads", "numpy chars/s", "torch chars/s", "torch / numpy", "load before"], []))
    for hidden in a.sizes:
        for threads in a.threads:
            figures, loads = {}, []
            for engine in ("numpy", "torch"):
                loads.append(f"{os.getloadavg()[0]:.1f}")
                figures[engine], _ = measure(a.corpus, engine, hidden, threads, a.seconds, a.layers, a.extra)
            print(f"| {hidden} | {threads} | {figures['numpy']:,.0f} | {figures['torch']:,.0f} | "
                  f"{figures['torch'] / figures['numpy']:.2f} | {' / '.join(loads)} |", flush=True)


if __name__ == "__main__":
    main()

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

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile


def measure(corpus, engine, hidden, threads, seconds, layers, extra):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS="1")
    never = str(10**9)
    with tempfile.TemporaryDirectory(prefix="charlstm-engines-") as d:
        run = os.path.join(d, "run")
        command = [sys.executable, "-m", "charlstm", "train", corpus, "--out", run, "-q", "--engine", engine,
                   "--steps", never, "--time-budget", f"{seconds}s", "--set", f"model.hidden={hidden}",
                   "--set", f"model.layers={layers}", "--set", "train.log_every=5", "--set", f"train.eval_every={never}",
                   "--set", f"train.save_every={never}", "--set", "train.val_max_chars=1000",
                   "--set", f"train.workers={1 if threads == 1 else 0}", *extra]
        subprocess.run(command, env=env, check=True)
        with open(os.path.join(run, "metrics.jsonl")) as fh:
            speeds = [r["chars_per_s"] for r in map(json.loads, fh) if "chars_per_s" in r]
    return statistics.median(speeds[1:] or speeds), len(speeds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--seconds", type=int, default=40)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="more config overrides for every run")
    a = ap.parse_args()
    extra = [x for item in a.extra for x in ("--set", item)]
    print("| H | threads | numpy chars/s | torch chars/s | torch / numpy | load before |")
    print("|---|---|---|---|---|---|")
    for hidden in a.sizes:
        for threads in a.threads:
            figures, loads = {}, []
            for engine in ("numpy", "torch"):
                loads.append(f"{os.getloadavg()[0]:.1f}")
                figures[engine], _ = measure(a.corpus, engine, hidden, threads, a.seconds, a.layers, extra)
            print(f"| {hidden} | {threads} | {figures['numpy']:,.0f} | {figures['torch']:,.0f} | "
                  f"{figures['torch'] / figures['numpy']:.2f} | {' / '.join(loads)} |", flush=True)


if __name__ == "__main__":
    main()

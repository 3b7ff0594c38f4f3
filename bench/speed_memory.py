"""Peak memory of `charlstm train` (bench/speed.py measures it once, on L): a 1 MB corpus, a few steps,
sampled every 20 ms as the summed proportional set size of its processes (worker processes included),
against the interpreter baselines and the bytes that must exist: parameters, gradients, Adam moments,
window buffers, corpus. Printed as one JSON line. Linux only (/proc).

    python bench/speed_memory.py --config L
"""

import os
import subprocess
import sys
import tempfile
import time

from timing import ROOT, V, child_parser, run_child  # bench/timing.py, beside this script


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


def measure(a, torch, H, L, B, T):
    return peak_memory(a, H, L, B, T)


if __name__ == "__main__":
    sys.exit(run_child(child_parser(__doc__, ["ours"]).parse_args(), "memory", measure))

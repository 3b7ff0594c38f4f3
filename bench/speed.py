"""charlstm against PyTorch's nn.LSTM on this CPU, side by side in one process run.

    python bench/speed.py                       # configurations S, M, L, 2 threads
    python bench/speed.py --configs M --threads 1 --rounds 7 --seconds 3

For every configuration it alternates rounds of charlstm and PyTorch (A, B, A, B, ...) and reports the
median over rounds of each round's median step time, as characters per second:
  train    the full training step as `charlstm train` runs it (forward, backward, clipping, Adam) and the
           same in PyTorch (one-hot input, nn.LSTM, nn.Linear, cross-entropy, clip_grad_norm_, Adam,
           state carried and detached);
  bound    the GEMM bound: T*B characters over the time the window's matrix products alone take at the
           float32 GEMM speed NumPy reaches on the same shapes (measured here, now);
  sample   characters generated per second at batch 1 and batch 64 (prime, then sample at temperature 1),
           PyTorch with oneDNN on and off;
  eval     characters scored per second by full-context evaluation of one long text (batch 1).
One JSON object per configuration goes to stdout; progress to stderr. Without torch the peer fields are null.
--doc docs/performance.md rewrites that page's tables from this run.
PyTorch is never a charlstm dependency: install it only where you benchmark (pip install torch==2.13.0).
"""

import argparse
import json
import os
import sys
import time

CONFIGS = {  # name: (H, L, B, T)
    "S": (128, 1, 32, 64),
    "M": (256, 2, 32, 64),
    "L": (512, 2, 64, 100),
}
V = 65
OPEN = []  # worker pools to close at exit


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="S,M,L", help="comma-separated names from S, M, L")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads for NumPy and torch.set_num_threads")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per measurement")
    ap.add_argument("--seconds", type=float, default=2.0, help="length of one round")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch peer even if it is installed")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: train, sample, eval, memory")
    ap.add_argument("--workers", type=int, default=0, help="training processes (0: as charlstm train chooses)")
    ap.add_argument("--doc", metavar="FILE", help="also rewrite the tables between the speed-table markers of "
                    "FILE (docs/performance.md)")
    return ap.parse_args()


ARGS = parse_args()
if __name__ == "__main__":  # not when a spawned training worker re-runs this module: it keeps one thread
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # read by the BLAS at import
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from charlstm import evaluate, model, sample  # noqa: E402
from charlstm.config import OptimConfig  # noqa: E402
from charlstm.data import Vocab  # noqa: E402
from charlstm.optim import Optimizer  # noqa: E402
from charlstm.parallel import DataParallel, auto_workers  # noqa: E402
from charlstm.train import train_step  # noqa: E402
from charlstm.workspace import Workspace  # noqa: E402

try:
    if ARGS.no_torch:
        raise ImportError
    import torch

    torch.set_num_threads(ARGS.threads)
except ImportError:
    torch = None


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def blas_info():
    """The BLAS library NumPy runs on and the kernel it chose at run time (OpenBLAS only)."""
    import ctypes
    import glob

    info = {"numpy": np.__version__}
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"] = f"{cfg.get('name')} {cfg.get('version')}"
    except Exception:
        info["blas"] = "unknown"
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*"))
    for path in libs:
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                fn = getattr(lib, f"{prefix}get_corename{suffix}", None)
                if fn is not None:
                    fn.restype = ctypes.c_char_p
                    info["blas_kernel"] = fn().decode()
                    return info
    return info


def timed(fn, seconds, min_calls=3):
    """Median seconds per call over about `seconds` of calls (after one warm-up call)."""
    fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < min_calls:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def alternate(fns, seconds, rounds):
    """fns: {name: (callable, chars per call)}; alternating rounds; median chars/s per name."""
    results = {name: [] for name in fns}
    for _ in range(rounds):
        for name, (fn, chars) in fns.items():
            if fn is not None:
                results[name].append(chars / timed(fn, seconds))
    return {name: (float(np.median(v)) if v else None) for name, v in results.items()}


# -------------------------------------------------------------------------------------------- training


def ours_train(H, L, B, T):
    """The training step as `charlstm train` runs it, worker processes included when it would use them."""
    rng = np.random.default_rng(0)
    spec = model.Spec("lstm", V, H, L)
    params = model.init_params(spec, rng)
    workers = ARGS.workers or auto_workers(spec, B)
    parallel = DataParallel(spec, B, T, workers) if workers > 1 else None
    if parallel is not None:
        for k, v in params.items():
            np.copyto(parallel.params[k], v)
        params = parallel.params
        OPEN.append(parallel)
    opt = Optimizer(OptimConfig(name="adam", lr=2e-3), params)
    work = Workspace()
    x = rng.integers(0, V, (T, B))
    y = rng.integers(0, V, (T, B))
    box = {"state": model.zero_state(spec, B)}

    def step():
        _, _, box["state"] = train_step(params, opt, x, y, box["state"], 2e-3, 5.0, work, parallel=parallel)

    return step, (params, opt, work, workers)


def torch_train(H, L, B, T):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(V, H, L)
    decoder = torch.nn.Linear(H, V)
    ps = list(lstm.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(ps, lr=2e-3)
    x = torch.randint(0, V, (T, B))
    y = torch.randint(0, V, (T, B))
    box = {"state": None}

    def step():
        out, (h, c) = lstm(torch.nn.functional.one_hot(x, V).float(), box["state"])
        loss = torch.nn.functional.cross_entropy(decoder(out).reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ps, 5.0)
        opt.step()
        box["state"] = (h.detach(), c.detach())

    return step


def gemm_bound(H, L, B, T, seconds=0.5):
    """Characters per second if a training window took only its matrix products, each at the speed
    NumPy's float32 GEMM reaches on that shape here; and the FLOPs per character."""
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
            a = rng.standard_normal((m, k)).astype(np.float32)
            b = rng.standard_normal((k, n)).astype(np.float32)
            out = np.empty((m, n), np.float32)
            cache[(m, k, n)] = timed(lambda: np.matmul(a, b, out=out), seconds / len(shapes))
        total_time += count * cache[(m, k, n)]
        flops += count * 2.0 * m * k * n
    return N / total_time, flops / N


# -------------------------------------------------------------------------------------- sampling, eval


def ours_sample(H, L, batch, length):
    spec = model.Spec("lstm", V, H, L)
    params = model.init_params(spec, np.random.default_rng(0))
    packed = model.pack(params)
    vocab = Vocab(chr(32 + i) for i in range(V))
    requests = [sample.parse("A", i) for i in range(batch)]
    options = sample.Options(length=length)
    return lambda: sample.generate(packed, vocab, requests, options, seed=0)


def torch_sample(H, L, batch, length, onednn):
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

    return run


def ours_eval(H, L, n_chars):
    spec = model.Spec("lstm", V, H, L)
    params = model.init_params(spec, np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, V, n_chars)
    work = Workspace()
    return lambda: evaluate.score(params, [ids], 256, work)


def torch_eval(H, L, n_chars):
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

    return run


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


def peak_memory(H, L, B, T):
    """Peak memory of `charlstm train` (a 1 MB corpus, a few steps), sampled every 20 ms as the summed
    proportional set size of its processes (worker processes included), against the interpreter
    baselines and the bytes that must exist: parameters, gradients, Adam moments, window buffers, corpus."""
    import subprocess
    import tempfile

    probe = "import sys, numpy, charlstm.train, charlstm.cli, time; time.sleep(1.0)"
    base_proc = subprocess.Popen([sys.executable, "-c", probe])
    time.sleep(0.8)
    baseline = _pss_tree(base_proc.pid)
    base_proc.wait()
    with tempfile.TemporaryDirectory() as d:
        corpus = os.path.join(d, "corpus.txt")
        rng = np.random.default_rng(0)
        with open(corpus, "w") as fh:
            fh.write("".join(chr(32 + c) for c in rng.integers(0, V, 1_000_000)))
        args = [corpus, "--out", os.path.join(d, "run"), "--steps", "4", "-q", "--set", f"model.hidden={H}",
                "--set", f"model.layers={L}", "--set", f"data.batch={B}", "--set", f"data.window={T}",
                "--set", "data.val_fraction=0.01", "--set", f"train.workers={ARGS.workers}"]
        proc = subprocess.Popen([sys.executable, "-m", "charlstm", "train", *args])
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _pss_tree(proc.pid))
            time.sleep(0.02)
    ARGS.workers, workers = 1, ARGS.workers  # the buffers of one process doing the whole batch
    step, (params, opt, work, _) = ours_train(H, L, B, T)
    ARGS.workers = workers
    step()  # allocates the window buffers
    n_params = sum(p.size for p in params.values())
    needed = 4 * n_params * 4 + work.nbytes() + 1_000_000  # params, grads, 2 moments; buffers; corpus ids
    used = workers or auto_workers(model.Spec("lstm", V, H, L), B)
    processes = 1 + used if used > 1 else 1  # the main process and its workers
    return {"peak_mb": peak / 2**20, "baseline_mb": baseline / 2**20, "processes": processes,
            "needed_mb": needed / 2**20, "ratio": (peak - processes * baseline) / needed}


# ------------------------------------------------------------------------------------------------ main


def main():
    skip = set(filter(None, ARGS.skip.split(",")))
    header = {"threads": ARGS.threads, "torch": torch.__version__ if torch else None, **blas_info()}
    log(json.dumps(header))
    rows = []
    for name in ARGS.configs.split(","):
        H, L, B, T = CONFIGS[name]
        row = {"config": name, "H": H, "L": L, "B": B, "T": T, "V": V, "threads": ARGS.threads}
        if "train" not in skip:
            log(f"{name}: training ...")
            ours, (_, _, _, workers) = ours_train(H, L, B, T)
            theirs = torch_train(H, L, B, T) if torch else None
            r = alternate({"ours": (ours, T * B), "torch": (theirs, T * B)}, ARGS.seconds, ARGS.rounds)
            bound, flops = gemm_bound(H, L, B, T)
            row.update({"train_chars_per_s": round(r["ours"]), "torch_train_chars_per_s": _round(r["torch"]),
                        "train_ratio": _ratio(r["ours"], r["torch"]), "gemm_bound_chars_per_s": round(bound),
                        "gemm_fraction": round(r["ours"] / bound, 3),
                        "torch_gemm_fraction": _ratio(r["torch"], bound), "gflop_per_char": flops / 1e9,
                        "train_workers": workers})
            while OPEN:
                OPEN.pop().close()
        if "sample" not in skip:
            for batch, length in ((1, 300), (64, 100)):
                log(f"{name}: sampling at batch {batch} ...")
                fns = {"ours": (ours_sample(H, L, batch, length), batch * length)}
                if torch:
                    fns["on"] = (torch_sample(H, L, batch, length, True), batch * length)
                    fns["off"] = (torch_sample(H, L, batch, length, False), batch * length)
                r = alternate(fns, ARGS.seconds, ARGS.rounds)
                best = max(r.get("on") or 0, r.get("off") or 0) or None
                row.update({f"sample_b{batch}_chars_per_s": round(r["ours"]),
                            f"torch_sample_b{batch}_onednn_on": _round(r.get("on")),
                            f"torch_sample_b{batch}_onednn_off": _round(r.get("off")),
                            f"sample_b{batch}_ratio_to_faster": _ratio(r["ours"], best)})
        if "eval" not in skip:
            log(f"{name}: eval ...")
            n = 4096
            r = alternate({"ours": (ours_eval(H, L, n), n - 1),
                           "torch": (torch_eval(H, L, n) if torch else None, n - 1)}, ARGS.seconds, ARGS.rounds)
            row.update({"eval_chars_per_s": round(r["ours"]), "torch_eval_chars_per_s": _round(r["torch"]),
                        "eval_ratio": _ratio(r["ours"], r["torch"])})
        if "memory" not in skip and name == "L":
            log(f"{name}: peak memory of charlstm train ...")
            row["memory"] = {k: round(v, 2) for k, v in peak_memory(H, L, B, T).items()}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if ARGS.doc:
        update_doc(ARGS.doc, header, rows)


def markdown(header, rows):
    """The tables of docs/performance.md: chars/s, ours against PyTorch, per configuration."""
    def num(x):
        return "-" if x is None else f"{x:,}"

    def ratio(x):
        return "-" if x is None else f"{x:.2f}x"

    env = ", ".join(f"{k} {v}" for k, v in header.items())
    out = [f"Measured {time.strftime('%Y-%m-%d')}: `python bench/speed.py --rounds {ARGS.rounds} --seconds "
           f"{ARGS.seconds:g}` ({env}).", "",
           "| config | H | L | B | T | charlstm train | PyTorch train | ratio | GEMM bound | charlstm / bound | "
           "PyTorch / bound | workers |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "train_chars_per_s" in r:
            out.append(f"| {r['config']} | {r['H']} | {r['L']} | {r['B']} | {r['T']} | {num(r['train_chars_per_s'])} | "
                       f"{num(r['torch_train_chars_per_s'])} | {ratio(r['train_ratio'])} | "
                       f"{num(r['gemm_bound_chars_per_s'])} | {r['gemm_fraction']:.2f} | "
                       f"{'-' if r['torch_gemm_fraction'] is None else format(r['torch_gemm_fraction'], '.2f')} | "
                       f"{r['train_workers']} |")
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


def update_doc(path, header, rows):
    begin, end = "<!-- speed-table -->", "<!-- /speed-table -->"
    text = open(path, encoding="utf-8").read()
    if begin not in text or end not in text:
        log(f"{path} has no {begin} ... {end} markers; tables not written")
        return
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{head}{begin}\n{markdown(header, rows)}\n{end}{tail}")
    log(f"{path}: tables rewritten")


def _round(x):
    return None if x is None else round(x)


def _ratio(a, b):
    return None if not a or not b else round(a / b, 3)


if __name__ == "__main__":
    main()

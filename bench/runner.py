"""What the benchmark scripts share: train variants with `charlstm train`, read what they logged, keep the
results, write the table, describe the host (the CPU and NumPy's BLAS). A module the scripts import, not a
script.

Every run is `python -m charlstm train ...` in a subprocess, as a user runs it, with this checkout's
charlstm first on the path (whatever is installed). Runs that share the machine (--parallel 2) get one
process and one BLAS thread each (SHARED), so their minutes mean nothing: they are compared by steps.

Results live in bench/results/, one JSON file per study, written again after every run, so a stopped
study keeps what it finished. A study whose runs are variants and seeds keeps a list of records, and a
record replaces the earlier one with the same key (merge).
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CONFIGS, DATA = ROOT / "configs", ROOT / "data"
SHARED = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # a share of the machine
VECTOR_FLAGS = ("avx2", "avx512f", "amx_tile")  # the instructions that decide which kernels OpenBLAS and PyTorch run

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the scripts import charlstm from this checkout too


def parser(doc, results=None):
    """An argparse parser whose --help is the script's docstring; with results (the default file), the
    options every study has: --results FILE, and --table to print the table of the results again."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if results is not None:
        shown = results.relative_to(ROOT) if results.is_relative_to(ROOT) else results
        ap.add_argument("--results", type=pathlib.Path, default=results, help=f"the results file [default: {shown}]")
        ap.add_argument("--table", action="store_true", help="train nothing: print the table of the results file")
    return ap


def variant_study(doc, results, variants, steps, every, seeds="1"):
    """parser() with the options of a study of variants trained in chunks: VARIANT..., --steps, --every,
    --seeds and --parallel, their defaults given."""
    ap = parser(doc, results)
    ap.add_argument("variants", nargs="*", metavar="VARIANT", help=f"what to train: {', '.join(variants)}")
    ap.add_argument("--steps", type=int, default=steps, help="steps of every run [default: %(default)s]")
    ap.add_argument("--every", type=int, default=every, help="steps between scorings [default: %(default)s]")
    ap.add_argument("--seeds", default=seeds, help="comma-separated seeds, a run each [default: %(default)s]")
    ap.add_argument("--parallel", type=int, default=2, help="runs at a time (each one process, one thread when "
                                                             "more than one) [default: %(default)s]")
    return ap


def check_variants(ap, asked, variants):
    """A usage error naming any variant asked for that variants lacks."""
    unknown = [v for v in asked if v not in variants]
    if unknown:
        ap.error(f"unknown variant {', '.join(unknown)}; choose from {', '.join(variants)}")


def seeds(text):
    """--seeds 1,2,3 -> [1, 2, 3]."""
    return [int(s) for s in str(text).split(",") if s.strip()]


def charlstm(*args, env=None, shared=False, check=False):
    """`python -m charlstm ARGS` from this checkout, its output captured: the CompletedProcess. shared:
    one process and one BLAS thread (for runs side by side); env: more environment variables."""
    full = dict(os.environ, **(SHARED if shared else {}), **(env or {}))
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "charlstm", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, env=full, check=check)


def train(corpus, out, *args, sets=(), shared=False, env=None, quiet=True):
    """`charlstm train CORPUS --out OUT [-q] ARGS --set S ...` (corpus None: no corpus, for --resume or the
    rooms demo); with shared, also train.workers=1. The CompletedProcess (its stderr holds the run's notes
    when not quiet)."""
    sets = [*sets, *(["train.workers=1"] if shared else [])]
    return charlstm("train", *([corpus] if corpus else []), "--out", out, *(["-q"] if quiet else []), *args,
                    *[x for s in sets for x in ("--set", s)], shared=shared, env=env)


def failure(proc):
    """None for a run that succeeded, else the end of what it said (for the record)."""
    return proc.stderr.strip()[-300:] if proc.returncode else None


def metrics(run_dir):
    """The records of a run's metrics.jsonl ([] when it has none)."""
    path = pathlib.Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def speed(records):
    """The median training characters per second of a run's records, or None."""
    figures = [r["chars_per_s"] for r in records if "chars_per_s" in r]
    return statistics.median(figures) if figures else None


def first_reaching(curve, level):
    """The first (x, value) pair of curve whose value is at least level, or None."""
    return next(((x, v) for x, v in curve if v >= level), None)


def load(path, default=None):
    """The JSON in path, or default (a new list) when there is none yet."""
    path = pathlib.Path(path)
    return json.loads(path.read_text()) if path.exists() else ([] if default is None else default)


def save(path, results):
    """Write results to path as JSON, through a temporary file (a stopped study never leaves half a file)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    os.replace(tmp, path)


def merge(records, record, key):
    """records with record in place of those with the same key(record)."""
    return [r for r in records if key(r) != key(record)] + [record]


def run_all(jobs, run, parallel, path, key):
    """run(job) for every job, `parallel` at a time; each record is merged into the results file at path
    as it comes (under a lock: the threads only wait for subprocesses). Returns the results."""
    lock = threading.Lock()

    def one(job):
        record = run(job)
        with lock:
            save(path, merge(load(path), record, key))
        print(json.dumps({k: record.get(k) for k in ("variant", "seed", "error")}), file=sys.stderr, flush=True)
        return record

    with ThreadPoolExecutor(max(parallel, 1)) as pool:
        list(pool.map(one, jobs))
    return load(path)


def markdown(header, rows):
    """A Markdown table: the header's cells, then one line per row of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def blas():
    """NumPy's BLAS as this process sees it (a charlstm subprocess inherits its environment): library,
    version, kernel and threads, from threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl to record it)"
    import numpy as np

    np.dot(np.ones((2, 2)), np.ones((2, 2)))  # loads the BLAS
    return "; ".join(f"{p['internal_api']} {p['version']} {p.get('architecture')}, {p['num_threads']} threads"
                     for p in threadpool_info() if p["user_api"] == "blas")


def cpu(cpuinfo="/proc/cpuinfo"):
    """This machine's processor, the host every figure is recorded with: {model_name, vendor, family,
    model, cores, and True or False for each of VECTOR_FLAGS}. Read from /proc/cpuinfo (its first
    processor's block); where there is none, the model name is platform's and family, model and flags
    are None (unknown, not absent). cores: the logical CPUs the system shows (lscpu's "CPU(s)")."""
    try:
        text = pathlib.Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    first = {}
    for line in text.split("\n\n")[0].splitlines():
        key, sep, value = line.partition(":")
        if sep:
            first.setdefault(key.strip().lower(), value.strip())
    flags = first.get("flags", first.get("features"))  # x86 names them flags, ARM features
    flags = set(flags.split()) if flags is not None else None
    family, model = (int(v) if v and v.isdigit() else v for v in (first.get("cpu family"), first.get("model")))
    return {"model_name": first.get("model name") or platform.processor() or platform.machine() or "unknown",
            "vendor": first.get("vendor_id"), "family": family, "model": model, "cores": os.cpu_count(),
            **{f: (f in flags if flags is not None else None) for f in VECTOR_FLAGS}}


def cpu_kind(c):
    """The processor as a kind of host, the same for every machine of its model whatever its cores:
    'AMD EPYC (family 23, model 1): avx2, no avx512f, no amx_tile'. The speed tables of
    docs/performance.md are kept one per kind."""
    flags = ", ".join(f if c.get(f) else (f"no {f}" if c.get(f) is False else f"{f} unknown") for f in VECTOR_FLAGS)
    return f"{c['model_name']} (family {c.get('family')}, model {c.get('model')}): {flags}"


def cpu_line(c):
    """The processor in one line, for a results file's reader or a log: its kind and its cores."""
    return f"{cpu_kind(c)}; {c.get('cores')} cores"


if __name__ == "__main__":  # a module, not a script: --help says what it is for
    parser(__doc__).parse_args()
    print(__doc__)

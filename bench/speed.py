"""charlstm against PyTorch's nn.LSTM on this CPU, each in its own fresh process, measured as users run them.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/speed.py     # S, M, L; 2 threads
    python bench/speed.py --configs M --threads 1 --rounds 7 --seconds 3
    python bench/speed.py --configs S --rounds 2 --seconds 0.3 --skip memory  # a smoke run

Measure with the processor's own BLAS kernel. OpenBLAS picks it at run time, unless OPENBLAS_CORETYPE (or
OPENBLAS_L2_SIZE) overrides it: some shells set them as a workaround for old OpenBLAS builds, users'
machines don't, and on the AVX-512 host of docs/performance.md the override (Haswell in place of SkylakeX)
made NumPy's products on the training shapes several times slower. Unset them for the benchmark command
alone, as above. The bench prints the CPU (runner.cpu) and the kernel and thread count NumPy got
(threadpoolctl; bench/timing.py, run alone, shows them too), warns when either variable is set, and will
not write --doc from such a run (or from one whose kernel differs from the one OpenBLAS picks without
them) unless given --allow-overridden-kernel.

Every measurement is a series of rounds, and a round is one fresh process per side, in turn (charlstm,
PyTorch, charlstm, ...): one of the measurement scripts, each runnable alone, with the timing helpers
they share in bench/timing.py:
  bench/speed_train.py   the training step of `charlstm train` itself (its Trainer, its workers), PyTorch's,
                         and the GEMM bound: what the window's matrix products alone allow;
  bench/speed_sample.py  characters generated per second at batch 1 and batch 64, PyTorch with oneDNN on
                         and off;
  bench/speed_eval.py    characters scored per second by full-context evaluation of one text (batch 1);
  bench/speed_memory.py  peak memory of `charlstm train` on L, once.
Each child gets OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS set to --threads (read by the
libraries when they are imported; PyTorch also gets torch.set_num_threads) and otherwise this
environment unchanged. A child warms up, then times single calls (bench/timing.py) and reports their
median; the figure is the median over rounds, as characters per second, and the ratio is charlstm's
over PyTorch's. One JSON object per configuration goes to stdout (with the host under "run": its CPU,
as runner.cpu describes it (model name, family and model, cores, avx2/avx512f/amx_tile), NumPy's BLAS
kernel and threads, the versions and the command; and every round's figure under "rounds"); progress,
the kernel line (CPU included) and warnings to stderr. A child that fails is reported in one line and its
side left out; Ctrl-C stops the running child (and its workers) first. Without torch the peer fields are
null. --doc docs/performance.md rewrites that page's tables for this host's kind of CPU, headed by the
host, the date and the command, and keeps other hosts' tables (bench/speed_doc.py).

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

import speed_doc  # bench/speed_doc.py, beside this script: the page's tables, one block per host kind
from runner import cpu, cpu_kind, cpu_line  # bench/runner.py: the host's CPU, described once for every bench
from timing import CONFIGS, ROOT, V, add_common, log  # bench/timing.py, beside this script

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = {part: os.path.join(HERE, f"{name}.py") for part, name in (
    ("probe", "timing"), ("train", "speed_train"), ("sample", "speed_sample"), ("eval", "speed_eval"),
    ("memory", "speed_memory"))}
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
KERNEL_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # change the kernel NumPy's OpenBLAS runs
PEER_OVERRIDES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS",
                  "MKL_DEBUG_CPU_TYPE")  # the same for PyTorch's kernels: reported, not refused
UNSET = "env " + " ".join(f"-u {k}" for k in KERNEL_OVERRIDES)
SAMPLE_BATCHES = (1, 64)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="S,M,L", help="comma-separated names from S, M, L [default: %(default)s]")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per measurement [default: %(default)s]")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: train, sample, eval, memory")
    ap.add_argument("--doc", metavar="FILE", help="also rewrite this host's tables between the speed-table markers "
                    "of FILE (docs/performance.md), one block per kind of CPU")
    ap.add_argument("--allow-overridden-kernel", action="store_true",
                    help=f"let --doc write from a run with {' or '.join(KERNEL_OVERRIDES)} set")
    ap.add_argument("--child-timeout", type=float, default=900.0, help="seconds before a child is stopped")
    add_common(ap)
    a = ap.parse_args(argv)
    if a.warmup is None:
        a.warmup = a.seconds / 2
    unknown = [c for c in a.configs.split(",") if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    if a.threads < 1 or a.rounds < 1 or a.seconds <= 0 or a.warmup < 0 or a.workers < 0:
        ap.error("--threads and --rounds must be at least 1, --seconds positive, --warmup and --workers not negative")
    return a


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

    def run(self, what, part, args, env=None):
        """The JSON report of the script of `part` (SCRIPTS) with args; ChildFailed with one line if it fails."""
        cmd = [sys.executable, SCRIPTS[part], *args, *self.common()]
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


def rounds(runner, name, part, sides, label_part=None):
    """sides: {label: the arguments of part's script}. Rounds of one fresh process per side in turn; returns the median
    over rounds of chars/s per label (None for a side that failed or was not run), the per-round figures
    and each side's last report. A side whose child fails is reported and left out of later rounds."""
    a = runner.a
    figures = {label: [] for label in sides}
    reports, failed = {}, set()
    for r in range(a.rounds):
        for label, args in sides.items():
            if label in failed:
                continue
            what = f"{name} {label_part or part} {label} (round {r + 1})"
            try:
                report = runner.run(what, part, args)
            except ChildFailed as e:
                log(f"error: {e}")
                runner.errors.append(str(e))
                failed.add(label)
                continue
            figures[label].append(report["chars_per_s"])
            reports[label] = report
        log(f"{name} {label_part or part} round {r + 1}/{a.rounds}: "
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
    got = runner.run("probe", "probe", [])
    native_env = {k: v for k, v in runner.env.items() if k not in KERNEL_OVERRIDES}
    native = runner.run("probe without the kernel variables", "probe", ["--no-torch"], env=native_env)
    overrides = {k: os.environ[k] for k in KERNEL_OVERRIDES if k in os.environ}
    run = {"date": datetime.date.today().isoformat(), "command": command_line(a, overrides), "argv": sys.argv,
           "cpu": cpu(), "python": sys.executable, "charlstm": got["charlstm"], "threads": a.threads,
           "numpy": got["numpy"], "blas": got["blas"], "blas_kernel": got["blas_kernel"],
           "blas_threads": got["blas_threads"],
           "blas_kernel_native": native["blas_kernel"], "kernel_overrides": overrides,
           "kernel_overridden": bool(overrides) or got["blas_kernel"] != native["blas_kernel"],
           "torch": got.get("torch"), "torch_threads": got.get("torch_threads"),
           "torch_cpu_capability": got.get("torch_cpu_capability"),
           "peer_overrides": {k: os.environ[k] for k in PEER_OVERRIDES if k in os.environ}}
    if got.get("torch_missing"):
        run["torch_missing"] = got["torch_missing"]
    return run


def kernel_lines(run):
    """The kernel line (the CPU, NumPy's BLAS kernel and threads, PyTorch), and the loud warnings."""
    torch = (f"PyTorch {run['torch']}: {run['torch_threads']} threads, ATen {run['torch_cpu_capability']}"
             if run["torch"] else f"PyTorch: none ({run.get('torch_missing', '--no-torch')}; peer fields null)")
    lines = [f"CPU {cpu_line(run['cpu'])}; NumPy {run['numpy']} on {run['blas']}: kernel {run['blas_kernel']}, "
             f"{run['blas_threads']} threads (without {' and '.join(KERNEL_OVERRIDES)}: {run['blas_kernel_native']}); "
             f"{torch}; charlstm from {run['charlstm']}"]
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
        sides = {"ours": ["--side", "ours", *base]}
        if torch:
            sides["torch"] = ["--side", "torch", *base]
        sides["bound"] = ["--side", "bound", *base]
        r, per_round["train"], reports = rounds(runner, name, "train", sides)
        ours, theirs, bound = r["ours"], r.get("torch"), r["bound"]
        row.update({"train_chars_per_s": _round(ours), "torch_train_chars_per_s": _round(theirs),
                    "train_ratio": _ratio(ours, theirs), "gemm_bound_chars_per_s": _round(bound),
                    "gemm_fraction": _ratio(ours, bound), "torch_gemm_fraction": _ratio(theirs, bound),
                    "gflop_per_char": reports.get("bound", {}).get("gflop_per_char"),
                    "train_workers": reports.get("ours", {}).get("workers")})
        if ours and bound and ours > bound:  # the bound's products ran slow: a busy or disturbed machine
            log(f"WARNING: {name}: the GEMM bound ({bound:,.0f} chars/s) is below the training speed: "
                "was the machine busy?")
        check_kernels(runner, run, reports)
    if "sample" not in skip:
        for batch in SAMPLE_BATCHES:
            args = ["--batch", str(batch), *base]
            sides = {"ours": ["--side", "ours", *args]}
            if torch:
                sides["torch_on"] = ["--side", "torch", "--onednn", "on", *args]
                sides["torch_off"] = ["--side", "torch", "--onednn", "off", *args]
            r, per_round[f"sample_b{batch}"], reports = rounds(runner, name, "sample", sides, f"sample b{batch}")
            best = max(r.get("torch_on") or 0, r.get("torch_off") or 0) or None
            row.update({f"sample_b{batch}_chars_per_s": _round(r["ours"]),
                        f"torch_sample_b{batch}_onednn_on": _round(r.get("torch_on")),
                        f"torch_sample_b{batch}_onednn_off": _round(r.get("torch_off")),
                        f"sample_b{batch}_ratio_to_faster": _ratio(r["ours"], best)})
            check_kernels(runner, run, reports)
    if "eval" not in skip:
        sides = {"ours": ["--side", "ours", *base]}
        if torch:
            sides["torch"] = ["--side", "torch", *base]
        r, per_round["eval"], reports = rounds(runner, name, "eval", sides)
        row.update({"eval_chars_per_s": _round(r["ours"]), "torch_eval_chars_per_s": _round(r.get("torch")),
                    "eval_ratio": _ratio(r["ours"], r.get("torch"))})
        check_kernels(runner, run, reports)
    if "memory" not in skip and name == "L":
        log(f"{name}: peak memory of charlstm train ...")
        try:
            m = runner.run(f"{name} memory", "memory", base)
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

    def stop(signum, frame):
        raise Stop(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    runner = Runner(a)
    try:
        if a.doc and speed_doc.read_doc(a.doc).startswith("error:"):  # before an hour of measuring, not after
            log(f"speed.py: {speed_doc.read_doc(a.doc)[len('error: '):]}")
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
        log(f"\n{speed_doc.markdown(run, rows)}\n")
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
            error = speed_doc.update_doc(a.doc, run, rows)
            log(f"speed.py: {error[len('error: '):]}" if error else
                f"{a.doc}: the tables of {cpu_kind(run['cpu'])} rewritten")
            if error:
                return 2
        return 1 if runner.errors else 0
    except (KeyboardInterrupt, Stop) as e:
        code = 143 if isinstance(e, Stop) else 130
        log("speed.py: interrupted; its running child was stopped" + (f"; {a.doc} not written" if a.doc else ""))
        return code


def _round(x):
    return None if x is None else round(x)


def _ratio(a, b):
    return None if not a or not b else round(a / b, 3)


if __name__ == "__main__":
    sys.exit(main())

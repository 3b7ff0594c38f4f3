"""How long a validation takes beside the training between two validations, on a large corpus with the
default settings (issue 35): one `charlstm train CORPUS --steps N --set train.eval_every=N` (the default
model and batch, validation scoring the default sample), read back from metrics.jsonl: the training
speed (chars_per_s, validation left out), the validation's seconds (val_seconds), and from them the
seconds of the default 500 steps between validations, and what scoring every held-out character would
cost at the validation's speed.

    python bench/validation.py big.txt [--steps 10] [--results bench/results/validation-1gb.json]

Results are one JSON record: the figures, the notes the run printed, the command, the date, the CPU
(model name, family and model, cores, vector flags: runner.cpu), the load average before and after,
and NumPy's OpenBLAS (kernel and threads, read from the library itself). The corpus is not kept or
copied; make it, for example, by repeating Tiny Shakespeare.
"""

import ctypes
import datetime
import glob
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import runner

EVERY = 500  # the default train.eval_every
CHARS_PER_STEP = 32 * 64  # the default data.batch x data.window


def openblas():
    """The kernel, threads and configuration NumPy's OpenBLAS reports in a process started like the runs."""
    code = ("import ctypes, glob, os, numpy, json\n"
            "libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), '..', 'numpy.libs', '*openblas*'))\n"
            "lib = ctypes.CDLL(libs[0]) if libs else None\n"
            "def get(name, kind):\n"
            "    f = getattr(lib, name, None) if lib else None\n"
            "    if f is None: return None\n"
            "    f.restype = kind\n"
            "    v = f()\n"
            "    return v.decode() if isinstance(v, bytes) else v\n"
            "print(json.dumps({'numpy': numpy.__version__, 'kernel': get('scipy_openblas_get_corename64_', ctypes.c_char_p),"
            " 'threads': get('scipy_openblas_get_num_threads64_', ctypes.c_int),"
            " 'config': get('scipy_openblas_get_config64_', ctypes.c_char_p)}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-300:]}


def main():
    ap = runner.parser(__doc__, runner.RESULTS / "validation-1gb.json")
    ap.add_argument("corpus", type=pathlib.Path)
    ap.add_argument("--steps", type=int, default=10, help="training steps, then one validation [default: 10]")
    ap.add_argument("--alone", action="store_true", help="the machine ran nothing else (recorded as shared_machine "
                                                          "false; not checked: the load averages are recorded too)")
    a = ap.parse_args()
    if a.table:
        print(json.dumps(json.loads(a.results.read_text()), indent=1))
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "run"
        load_before = os.getloadavg()
        sets = [f"train.eval_every={a.steps}", f"train.save_every={a.steps}"]
        proc = runner.train(a.corpus, out, "--steps", a.steps, sets=sets, quiet=False)
        load_after = os.getloadavg()
        records = runner.metrics(out)
    if proc.returncode:
        sys.exit(runner.failure(proc))
    notes = [line for line in proc.stderr.splitlines() if line.startswith(("note", "training", "done"))]
    speed = runner.speed(records)
    val = [r["val_seconds"] for r in records if "val_seconds" in r]
    sample = re.search(r"scores the same ([\d,]+) of the ([\d,]+) held-out", proc.stderr)
    scored, held = (int(g.replace(",", "")) for g in sample.groups()) if sample else (None, None)
    training = EVERY * CHARS_PER_STEP / speed
    result = {
        "date": datetime.date.today().isoformat(), "cpu": runner.cpu(), "shared_machine": not a.alone,
        "load_average_before": load_before, "load_average_after": load_after, "openblas": openblas(),
        "command": f"python bench/validation.py {a.corpus} --steps {a.steps}  (runs: python -m charlstm train "
                   f"CORPUS --steps {a.steps} --set {' --set '.join(sets)})",
        "corpus_bytes": a.corpus.stat().st_size, "held_out_chars": held, "scored_chars": scored,
        "train_chars_per_s": speed, "validation_seconds": val[0] if val else None,
        "training_seconds_per_500_steps": training,
        "validation_share_of_500_steps": val[0] / (val[0] + training) if val else None,
        "full_held_out_validation_seconds_estimated": val[0] * held / scored if val and scored else None,
        "notes": notes,
    }
    a.results.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

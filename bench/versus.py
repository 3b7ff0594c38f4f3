"""Before and after: one measurement script of bench/ run from two checkouts, a fresh process each time,
rounds alternating (A B, B A, A B, ...), the OpenBLAS kernel override unset; prints each run's chars/s
and then one JSON line with both medians and the ratio after / before, pair by pair.

    git worktree add /tmp/before <commit>
    python bench/versus.py /tmp/before . --rounds 5 -- speed_train.py --side ours --config M --seconds 3

The script must print a JSON line with chars_per_s last (bench/speed_train.py, speed_sample.py and
speed_eval.py do). Run it on an idle machine: it times whole processes one after the other.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def run(root, script, args, env):
    """chars/s of one run of bench/<script> in the checkout at root."""
    root = os.path.abspath(root)
    proc = subprocess.run([sys.executable, os.path.join(root, "bench", script), *args], capture_output=True,
                          text=True, env=env, cwd=root)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"{script} in {root} failed: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(lines[-1])["chars_per_s"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="the checkout measured first in the first round")
    ap.add_argument("after", help="the other checkout")
    ap.add_argument("--rounds", type=int, default=5, help="pairs of runs [default: %(default)s]")
    ap.add_argument("script", help="a script of bench/, e.g. speed_train.py")
    ap.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDES}
    speeds = {"before": [], "after": []}
    for r in range(a.rounds):
        order = ("before", "after") if r % 2 == 0 else ("after", "before")
        for side in order:
            speeds[side].append(run(getattr(a, side), a.script, a.args, env))
            print(side, round(speeds[side][-1]), file=sys.stderr, flush=True)
    before, after = statistics.median(speeds["before"]), statistics.median(speeds["after"])
    print(json.dumps({"script": [a.script, *a.args], "before_median": round(before), "after_median": round(after),
                      "ratio": round(after / before, 3),
                      "pairs": [round(y / x, 3) for x, y in zip(speeds["before"], speeds["after"])]}))


if __name__ == "__main__":
    main()

"""A sweep of short timed runs: which configuration learns most in a fixed wall-clock budget?

    python bench/sweep.py ../shared/corpora/tinyshakespeare.txt --config configs/shakespeare.yaml \
        --minutes 3 --grid model.hidden=256,384,512 --grid optim.lr=0.002,0.004

Every combination of the --grid values (or --random N draws from them) trains with `charlstm train
--time-budget` from the same base config and seed, one run at a time; the table lists each run's best
validation loss, steps, characters per second and epochs, best first. Results go to
bench/results/sweep-<name>.json and the table to stdout (Markdown).
"""

import argparse
import itertools
import json
import pathlib
import random
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--config", default=str(ROOT / "configs" / "shakespeare.yaml"))
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="fixed overrides for every run")
    ap.add_argument("--random", type=int, default=0, help="sample this many combinations instead of all")
    ap.add_argument("--name", default="sweep")
    args = ap.parse_args()

    axes = []
    for g in args.grid:
        key, values = g.split("=", 1)
        axes.append([(key, v) for v in values.split(",")])
    combos = list(itertools.product(*axes)) or [()]
    if args.random:
        combos = random.Random(0).sample(combos, min(args.random, len(combos)))
    rows = []
    for i, combo in enumerate(combos, 1):
        settings = [f"{k}={v}" for k, v in combo]
        print(f"[{i}/{len(combos)}] {' '.join(settings) or 'base'}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as d:
            cmd = [sys.executable, "-m", "charlstm", "train", args.corpus, "--config", args.config, "--out", d,
                   "--time-budget", f"{args.minutes}m", "-q"]
            for s in args.overrides + settings:
                cmd += ["--set", s]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            records = [json.loads(line) for line in (pathlib.Path(d) / "metrics.jsonl").read_text().splitlines()] \
                if (pathlib.Path(d) / "metrics.jsonl").exists() else []
        vals = [r["val_loss"] for r in records if "val_loss" in r]
        train = [r for r in records if "train_loss" in r]
        rows.append({"settings": settings, "best_val": min(vals) if vals else None,
                     "final_val": vals[-1] if vals else None, "steps": train[-1]["step"] if train else 0,
                     "epochs": train[-1]["epoch"] if train else 0,
                     "chars_per_s": sorted(r["chars_per_s"] for r in train)[len(train) // 2] if train else 0,
                     "error": proc.stderr.strip()[-300:] if proc.returncode else None})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    out = ROOT / "bench" / "results" / f"sweep-{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"corpus": args.corpus, "config": args.config, "minutes": args.minutes,
                               "overrides": args.overrides, "runs": rows}, indent=1))
    rows.sort(key=lambda r: r["best_val"] if r["best_val"] is not None else float("inf"))
    print(f"| settings (on {pathlib.Path(args.config).name}, {args.minutes:g} min each) | best val | final val | "
          f"steps | epochs | chars/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        val = "failed" if r["best_val"] is None else f"{r['best_val']:.4f}"
        final = "-" if r["final_val"] is None else f"{r['final_val']:.4f}"
        print(f"| {' '.join(r['settings']) or 'base'} | {val} | {final} | {r['steps']} | {r['epochs']:.2f} | "
              f"{r['chars_per_s']:,.0f} |")


if __name__ == "__main__":
    main()

"""A sweep of short timed runs: which configuration learns most in a fixed wall-clock budget?

    python bench/sweep.py ../shared/corpora/tinyshakespeare.txt --config configs/shakespeare.yaml \
        --minutes 3 --grid model.hidden=256,384,512 --grid optim.lr=0.002,0.004

Every combination of the --grid values (or --random N draws from them) trains with `charlstm train
--time-budget` from the same base config and seed, one run at a time; the table lists each run's best
validation loss, steps, characters per second and epochs, best first. Results go to
bench/results/sweep-<name>.json (after every run) and the table to stdout (Markdown).
"""

import itertools
import pathlib
import random
import sys
import tempfile

import runner  # bench/runner.py, beside this script


def main():
    ap = runner.parser(__doc__)
    ap.add_argument("corpus", help="the training text")
    ap.add_argument("--config", default=str(runner.CONFIGS / "shakespeare.yaml"),
                    help="the base config [default: configs/shakespeare.yaml]")
    ap.add_argument("--minutes", type=float, default=3.0, help="each run's budget [default: %(default)s]")
    ap.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                    help="values of one key to try (repeatable: every combination)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="fixed overrides for every run")
    ap.add_argument("--random", type=int, default=0, help="sample this many combinations instead of all")
    ap.add_argument("--name", default="sweep", help="results go to bench/results/sweep-NAME.json "
                                                    "[default: %(default)s]")
    ap.add_argument("--results", type=pathlib.Path, help="the results file [default: bench/results/sweep-NAME.json]")
    args = ap.parse_args()

    axes = []
    for g in args.grid:
        key, values = g.split("=", 1)
        axes.append([(key, v) for v in values.split(",")])
    combos = list(itertools.product(*axes)) or [()]
    if args.random:
        combos = random.Random(0).sample(combos, min(args.random, len(combos)))
    out = args.results or runner.RESULTS / f"sweep-{args.name}.json"
    results = {"corpus": args.corpus, "config": args.config, "minutes": args.minutes, "overrides": args.overrides,
               "runs": []}
    rows = results["runs"]
    for i, combo in enumerate(combos, 1):
        settings = [f"{k}={v}" for k, v in combo]
        print(f"[{i}/{len(combos)}] {' '.join(settings) or 'base'}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as d:
            proc = runner.train(args.corpus, d, "--config", args.config, "--time-budget", f"{args.minutes}m",
                                sets=args.overrides + settings)
            records = runner.metrics(d)
        vals = [r["val_loss"] for r in records if "val_loss" in r]
        train = [r for r in records if "train_loss" in r]
        rows.append({"settings": settings, "best_val": min(vals) if vals else None,
                     "final_val": vals[-1] if vals else None, "steps": train[-1]["step"] if train else 0,
                     "epochs": train[-1]["epoch"] if train else 0,
                     "chars_per_s": sorted(r["chars_per_s"] for r in train)[len(train) // 2] if train else 0,
                     "error": runner.failure(proc)})
        print(rows[-1], file=sys.stderr, flush=True)
        runner.save(out, results)  # after every run: a stopped sweep keeps what it finished
    rows = sorted(rows, key=lambda r: r["best_val"] if r["best_val"] is not None else float("inf"))
    header = [f"settings (on {pathlib.Path(args.config).name}, {args.minutes:g} min each)", "best val", "final val",
              "steps", "epochs", "chars/s"]
    print(runner.markdown(header, [[" ".join(r["settings"]) or "base",
                                    "failed" if r["best_val"] is None else f"{r['best_val']:.4f}",
                                    "-" if r["final_val"] is None else f"{r['final_val']:.4f}", r["steps"],
                                    f"{r['epochs']:.2f}", f"{r['chars_per_s']:,.0f}"] for r in rows]))

if __name__ == "__main__":
    main()

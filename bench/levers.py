"""What sets the LSTM's breakthrough on the rooms task? Short runs of the GRU's rooms recipe
(configs/rooms-gru.yaml) on the LSTM, one lever changed at a time, over several seeds, compared at equal
optimizer steps.

    python bench/levers.py --steps 2500 --seeds 1,2,3 --parallel 2 lstm-base lr6e-3 chrono256
    python bench/levers.py --list                      # the named variants
    python bench/levers.py --table                     # the table again from bench/results/levers.json

Every run is `charlstm train` with no corpus (the rooms stories) and the recipe the variants were
measured against, configs/rooms-gru.yaml (the GRU's, with which the LSTM was slow), plus the variant's
--set overrides and the seed, the cloze accuracy on data/rooms-cloze.tsv scored every
--cloze-every steps. With --parallel 2 two runs share the machine, each in one process with one BLAS
thread, so minutes mean nothing: runs are compared by steps, and each configuration's speed is measured
apart (`--timing`: the variant alone, as `charlstm train` runs it, for a few hundred steps) to turn steps
into minutes. Curves go to bench/results/levers.json (merged with earlier runs); the table, Markdown
for docs/memory.md, to stdout.

The open world's levers (issue 27) change the rooms preset instead, scored on the unseen fillers:

    python bench/levers.py --base configs/rooms.yaml --cloze data/rooms-cloze-fillers.tsv \
        --results bench/results/levers-open.json --steps 2000 --seeds 1,2 open-base open-gates curriculum-mix
"""

import pathlib
import sys
import tempfile
import time

import runner  # bench/runner.py, beside this script

RESULTS = runner.RESULTS / "levers.json"
BASE = runner.CONFIGS / "rooms-gru.yaml"  # the recipe every lever changes one thing of
LSTM = ["model.cell=lstm", "model.hidden=256"]  # that recipe on the 256-unit LSTM
VARIANTS = {
    "gru-recipe": [],
    "lstm-base": LSTM,
    "no-forget-bias": LSTM + ["model.forget_bias=null"],
    "forget-bias-4": LSTM + ["model.forget_bias=4.0"],
    "chrono4": LSTM + ["model.forget_bias=null", "model.chrono=4"],
    "chrono8": LSTM + ["model.forget_bias=null", "model.chrono=8"],
    "chrono64": LSTM + ["model.forget_bias=null", "model.chrono=64"],
    "chrono256": LSTM + ["model.forget_bias=null", "model.chrono=256"],
    "orthogonal": LSTM + ["model.orthogonal=true"],
    "lr6e-3": LSTM + ["optim.lr=0.006"],
    "lr1e-2": LSTM + ["optim.lr=0.01"],
    "clip5": LSTM + ["optim.clip=5.0"],
    "warmup-lr6e-3": LSTM + ["optim.schedule=cosine", "optim.warmup=300", "optim.lr=0.006", "optim.min_lr=0.0003"],
    "warmup-lr1e-2": LSTM + ["optim.schedule=cosine", "optim.warmup=300", "optim.lr=0.01", "optim.min_lr=0.0003"],
    "betas-0.99": LSTM + ["optim.betas=[0.9, 0.99]"],
    "rmsprop": LSTM + ["optim.name=rmsprop"],
    "batch16": LSTM + ["data.batch=16"],
    "batch64": LSTM + ["data.batch=64"],
    "batch64-lr6e-3": LSTM + ["data.batch=64", "optim.lr=0.006"],
    "batch128": LSTM + ["data.batch=128"],
    "batch64-lr1e-2": LSTM + ["data.batch=64", "optim.lr=0.01"],
    "batch128-lr6e-3": LSTM + ["data.batch=128", "optim.lr=0.006"],
    "batch128-lr1e-2": LSTM + ["data.batch=128", "optim.lr=0.01"],
    "hidden128": LSTM + ["model.hidden=128"],
    "hidden384": LSTM + ["model.hidden=384"],
    "hidden512": LSTM + ["model.hidden=512"],
    "layers2": LSTM + ["model.layers=2"],
    "no-curriculum": LSTM + ["data.curriculum_steps=0"],
    "curriculum-short": LSTM + ["data.curriculum_start=0.05"],
    "no-average": LSTM + ["optim.ema=0.0"],
    "average-0.99": LSTM + ["optim.ema=0.99"],
    # against configs/rooms.yaml (--base), the open world's recipe
    "open-base": [],
    "open-gates": ["model.open_gates=1.0"],
    "curriculum-mix": ["data.curriculum_mix=0.25"],
    "open-batch128-lr1e-2": ["data.batch=128", "optim.lr=0.01"],
    "open-hidden384": ["model.hidden=384"],
}


def run(name, overrides, seed, steps, cloze_every, base, single, timing=False, probe=None):
    """One training run of the recipe `base` with overrides; its record, with the cloze curve [(step,
    elapsed, accuracy)]. single: a share of the machine (one process, one BLAS thread)."""
    sets = [f"train.cloze_every={cloze_every}", *([f"train.cloze={probe}"] if probe else []), *overrides]
    with tempfile.TemporaryDirectory() as d:
        start = time.monotonic()
        proc = runner.train(None, d, "--config", base, "--steps", steps, "--seed", seed, sets=sets, shared=single)
        wall = time.monotonic() - start
        records = runner.metrics(d)
    curve = [(r["step"], r["elapsed"], r["cloze_accuracy"]) for r in records if "cloze_accuracy" in r]
    return {"variant": name, "overrides": overrides, "seed": seed, "steps": steps, "single": single,
            "probe": probe and sum(1 for _ in open(probe)), "timing": timing, "wall": wall, "curve": curve,
            "chars_per_s": runner.speed(records), "error": runner.failure(proc)}


def first(curve, level):
    """(step, elapsed) of the first score at or above level, or None."""
    return next(((s, e) for s, e, a in curve if a >= level), None)


def table(results, at=(500, 1000, 1500, 2000, 2500)):
    """Per variant: each seed's steps to 50/90/98% and accuracy at some steps; a column no run reached, and
    the speed column when nothing was timed, are left out."""
    runs = [r for r in results if not r["timing"]]
    timing = {r["variant"]: r for r in results if r["timing"]}
    at = [s for s in at if any(st == s for r in runs for st, _, _ in r["curve"])]
    header = ["variant", "seeds", "steps to 50%", "to 90%", "to 98%", *(f"at {s}" for s in at)]
    header += ["s/1000 steps alone"] if timing else []
    rows = []
    for name in dict.fromkeys(r["variant"] for r in runs):
        mine = sorted((r for r in runs if r["variant"] == name), key=lambda r: r["seed"])
        cells = [name, ",".join(str(r["seed"]) for r in mine)]
        for level in (0.5, 0.9, 0.98):  # per seed, in the order of the seeds column
            hits = [first(r["curve"], level) for r in mine]
            cells.append(" / ".join(str(h[0]) if h else "never" for h in hits))
        for s in at:
            accs = [next((a for st, _, a in r["curve"] if st == s), None) for r in mine]
            shown = [f"{100 * a:.0f}" for a in accs if a is not None]
            cells.append(" / ".join(shown) + "%" if shown else "-")
        if timing:
            t = timing.get(name)
            cells.append(f"{1000 * t['curve'][-1][1] / t['curve'][-1][0]:.0f}" if t and t["curve"] else "-")
        rows.append(cells)
    return runner.markdown(header, rows)


def main():
    ap = runner.parser(__doc__, RESULTS)
    ap.add_argument("variants", nargs="*", metavar="VARIANT", help="what to train (--list names them)")
    ap.add_argument("--steps", type=int, default=2500, help="steps of every run [default: %(default)s]")
    ap.add_argument("--seeds", default="1", help="comma-separated seeds, a run each [default: %(default)s]")
    ap.add_argument("--cloze-every", type=int, default=125, help="steps between cloze scorings [default: %(default)s]")
    ap.add_argument("--parallel", type=int, default=2, help="runs at a time (each one process, one thread) "
                                                             "[default: %(default)s]")
    ap.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra override for every variant (then named with it)")
    ap.add_argument("--probe", type=int, default=0,
                    help="score only the first N stories of the cloze set during training (faster)")
    ap.add_argument("--timing", action="store_true",
                    help="time each variant alone, as charlstm train runs it (machine otherwise idle)")
    ap.add_argument("--base", type=pathlib.Path, default=BASE,
                    help=f"the recipe the variants change [default: {BASE.relative_to(runner.ROOT)}]")
    ap.add_argument("--cloze", type=pathlib.Path, default=runner.DATA / "rooms-cloze.tsv",
                    help="the cloze set scored during training (--probe: its first N lines) "
                         "[default: data/rooms-cloze.tsv]")
    ap.add_argument("--list", action="store_true", help="name the variants and their settings")
    args = ap.parse_args()
    if args.list:
        for name, overrides in VARIANTS.items():
            print(f"{name}: {' '.join(overrides)}")
        return
    if args.table:
        print(table(runner.load(args.results)))
        return
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variant {', '.join(unknown)}; --list names them")
    jobs = []
    for name in args.variants:
        label = name + "".join(f" +{e}" for e in args.extra)
        jobs += [(label, VARIANTS[name] + args.extra, seed) for seed in runner.seeds(args.seeds)]
    if args.timing:
        for label, overrides, seed in jobs:
            print(f"timing {label}", file=sys.stderr, flush=True)
            record = run(label, overrides, seed, args.steps, args.cloze_every, args.base, single=False, timing=True)
            runner.save(args.results, runner.merge(runner.load(args.results), record,
                                                   key=lambda r: (r["timing"], r["variant"])))
        return
    probe = args.cloze.resolve()  # always named: the demo's own cloze set is not rooms-cloze.tsv since 2026-12-04
    if args.probe:
        probe = pathlib.Path(tempfile.mkdtemp(prefix="charlstm-levers-")) / f"{args.cloze.stem}-{args.probe}.tsv"
        probe.write_text("".join(args.cloze.read_text().splitlines(keepends=True)[: args.probe]))
    results = runner.run_all(jobs, lambda job: run(*job, args.steps, args.cloze_every, args.base,
                                                   single=args.parallel > 1, probe=probe),
                             args.parallel, args.results, key=lambda r: (r["timing"], r["variant"], r["seed"]))
    print(table(results))


if __name__ == "__main__":
    main()

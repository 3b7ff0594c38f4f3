"""The runs model.size auto's rule is fitted to: one corpus, some time budgets, some shapes.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/budget.py train.txt --val val.txt \
        --name shk --minutes 2 10 --shapes 256x1 384x1 512x1 384x2 auto [--set model.dropout=0.2]

Each run is `charlstm train CORPUS --val VAL --time-budget M --set model.size=auto --set model.hidden=H
--set model.layers=L` exactly as a user runs it, alone: the run times its shape at the start and fits its
schedule (steps, cosine, validations) and dropout to the budget (autosize.py), so the shapes are compared
as auto would train each of them. "auto" leaves the shape to the rule; --fixed default --shapes fixed
trains configs/default.yaml as it is, the fixed default to compare with. Results are appended, run by run,
to bench/results/budget-<name>.json (a stopped sweep keeps what it finished); the table is printed at the end.
"""

import json
import pathlib
import sys
import tempfile

import numpy as np
import yaml

import runner  # bench/runner.py, beside this script


def parse():
    ap = runner.parser(__doc__)
    ap.add_argument("corpus", help="the training text")
    ap.add_argument("--val", help="validation file (default: the corpus's held-out tail)")
    ap.add_argument("--name", required=True, help="results go to bench/results/budget-NAME.json")
    ap.add_argument("--minutes", type=float, nargs="+", required=True, help="the budgets, a run each")
    ap.add_argument("--shapes", nargs="+", default=["auto"], help="HIDDENxLAYERS, or auto [default: auto]")
    ap.add_argument("--record", metavar="RUN_DIR", help="add this finished auto run of --minutes to the results")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a config override for every run (repeatable)")
    ap.add_argument("--fixed", metavar="CONFIG", help="train this preset or file as it is (no sizing): give "
                                                      "--shapes fixed")
    ap.add_argument("--label", default="", help="a name for this variant in the table (e.g. dropout0.2)")
    ap.add_argument("--keep", metavar="DIR", help="keep the run directories under DIR")
    return ap.parse_args()


def run(args, minutes, shape, out):
    extra = ["--config", args.fixed] if args.fixed else []
    sets = [] if args.fixed else ["model.size=auto"]
    if shape not in ("auto", "fixed"):
        hidden, layers = shape.split("x")
        sets += [f"model.hidden={hidden}", f"model.layers={layers}"]
    done = runner.train(args.corpus, out, "--time-budget", f"{minutes:g}m", *extra,
                        *(["--val", args.val] if args.val else []), sets=[*sets, *args.overrides], quiet=False)
    if done.returncode:
        sys.exit(f"budget.py: {minutes:g} min, {shape} failed: {done.stderr.strip()}")
    return result(args, minutes, shape, out, done.stderr)


def result(args, minutes, shape, out, stderr=""):
    """The record of the run in out: its curve, what it chose and reached."""
    records = runner.metrics(out)
    curve = [(r["elapsed"], r["val_loss"], r["step"]) for r in records if "val_loss" in r]
    train = [r["train_loss"] for r in records if "train_loss" in r]
    chosen = yaml.safe_load((out / "config.yaml").read_text())
    with np.load(out / "latest.npz", allow_pickle=False) as z:
        params = sum(z[k].size for k in z.files if k.startswith(("lstm.", "decoder.")))
        train_chars = json.loads(z["meta"].tobytes())["corpus"]["train_chars"]
    said = [line for line in stderr.splitlines() if "model.size auto" in line or "chosen:" in line]
    return {"minutes": minutes, "shape": shape, "label": args.label, "overrides": args.overrides,
            "config": chosen, "curve": curve, "best": min(v for _, v, _ in curve), "final": curve[-1][1],
            "train_loss": train[-1] if train else None, "steps_done": curve[-1][2], "parameters": int(params),
            "said": said, "train_chars": train_chars}


def main():
    args = parse()
    path = runner.RESULTS / f"budget-{args.name}.json"
    results = runner.load(path, {"corpus": args.corpus, "val": args.val, "runs": []})
    results.setdefault("blas", []).append(runner.blas())
    results.setdefault("cpu", []).append(runner.cpu())  # one each call, as blas: runs may come from other hosts
    if args.record:  # a run made elsewhere (bench/quality.py's charlstm side), recorded as it is
        results["runs"].append(result(args, args.minutes[0], "auto", pathlib.Path(args.record)))
        results["train_chars"] = results["runs"][-1]["train_chars"]
        runner.save(path, results)
        print(row(results["runs"][-1]))
        return
    for minutes in args.minutes:
        for shape in args.shapes:
            print(f"{minutes:g} min, {shape} {args.label} ...", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as tmp:
                out = pathlib.Path(args.keep) / f"{args.name}-{minutes:g}m-{shape}{args.label}" if args.keep \
                    else pathlib.Path(tmp) / "run"
                record = run(args, minutes, shape, out)
            results["train_chars"] = record["train_chars"]
            results["runs"].append(record)
            runner.save(path, results)
            print(row(record), flush=True)


def row(r):
    m, d = r["config"]["model"], r["config"]
    return (f"| {r['minutes']:g} | {m['hidden']}x{m['layers']} {r['label']} | {d['data']['batch']} | "
            f"{m['dropout']}/{m['decoder_dropout']} | {r['steps_done']:,}/{d['train']['steps']:,} | "
            f"{r['best']:.4f} | {r['final']:.4f} | {r['train_loss']:.3f} |")


if __name__ == "__main__":
    main()

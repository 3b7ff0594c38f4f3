"""Does the LSTM remember where a vanilla RNN forgets? The rooms cloze task for rnn, gru and lstm at equal
parameter count and equal training time, on this machine.

    python bench/memory.py --minutes 8 --png docs/memory.png   # about 3 x 8 minutes; bench/results/memory.json
    python bench/memory.py --replot --png docs/memory.png      # the table and curves again, training nothing

Each cell trains with configs/rooms.yaml as shipped (lines mode, the gap curriculum, the rate halved every
4 epochs, the moving average of the weights scored) for the same wall-clock budget, its hidden size chosen
so its parameter count matches the LSTM's (the tanh RNN has no gate to bias). During training the
cloze accuracy is scored every 100 steps on 200 filler stories (the curve and the time to break through:
the first score of at least 0.5); at the end all three are scored on data/rooms-cloze.tsv, by gap length
and by story form, and on data/rooms-cloze-nofill.tsv. The result table is printed as Markdown for docs/memory.md.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from charlstm import checkpoint, corpus, evaluate, model  # noqa: E402
from charlstm.cells import CELLS  # noqa: E402

BUCKETS = ((0, 40), (40, 80), (80, 120), (120, 10_000))
FORMS = ("form 1 (the other one)", "form 2 (the newcomer)")  # "A walks in ..., B also ..."; "A and B ..., later C"


def n_params(cell, V, H):
    return sum(int(__import__("numpy").prod(s)) for s in model.param_shapes(model.Spec(cell, V, H, 1)).values())


def matched_hidden(cell, V, target):
    """The hidden size whose one-layer model has the parameter count closest to target."""
    return min(range(8, 2048), key=lambda H: abs(n_params(cell, V, H) - target))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per cell")
    ap.add_argument("--lstm-hidden", type=int, default=256)
    ap.add_argument("--cells", default="rnn,gru,lstm")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "memory.json"))
    ap.add_argument("--png", help="draw the cloze-accuracy curves to this PNG (matplotlib)")
    ap.add_argument("--replot", action="store_true", help="train nothing: table and curves from --out")
    args = ap.parse_args()
    if args.replot:
        results = json.loads(pathlib.Path(args.out).read_text())
        print(table(results))
        if args.png:
            plot(results, args.png)
        return

    V = len(set((ROOT / "data" / "rooms-train.txt").read_text()))
    target = n_params("lstm", V, args.lstm_hidden)
    work = pathlib.Path(tempfile.mkdtemp(prefix="charlstm-memory-"))
    probe = work / "cloze200.tsv"
    probe.write_text("".join((ROOT / "data" / "rooms-cloze.tsv").read_text().splitlines(keepends=True)[:200]))
    results = {"minutes": args.minutes, "params_target": target, "cells": {}}
    for cell in args.cells.split(","):
        H = args.lstm_hidden if cell == "lstm" else matched_hidden(cell, V, target)
        run = work / cell
        cmd = [sys.executable, "-m", "charlstm", "train", str(ROOT / "data" / "rooms-train.txt"), "--config",
               str(ROOT / "configs" / "rooms.yaml"), "--out", str(run), "--time-budget", f"{args.minutes}m",
               "--steps", "1000000", "--set", f"model.cell={cell}", "--set", f"model.hidden={H}",
               "--set", f"train.cloze={probe}", "--set", "train.cloze_every=100", "-q"]
        if cell == "rnn":
            cmd += ["--set", "model.forget_bias=null"]
        print(f"{cell}: H={H}, {n_params(cell, V, H):,} parameters, {args.minutes} minutes", file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True)
        curve = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        curve = [(r["elapsed"], r["cloze_accuracy"]) for r in curve if "cloze_accuracy" in r]
        ckpt = checkpoint.load(run / "latest.npz")
        prompts, answers = evaluate.read_cloze(ROOT / "data" / "rooms-cloze.tsv")
        _, _, fills = evaluate.cloze(ckpt.params, ckpt.vocab, prompts, answers)
        by_gap = {}
        for lo, hi in BUCKETS:
            hits = [f == a for p, a, f in zip(prompts, answers, fills) if lo <= corpus.story_gap(p) < hi]
            by_gap[f"{lo}-{hi if hi < 10_000 else ''}"] = (sum(hits) / len(hits) if hits else None, len(hits))
        forms = {form: [] for form in FORMS}
        for p, a, f in zip(prompts, answers, fills):
            forms[FORMS[" together, later " in p]].append(f == a)
        nofill_prompts, nofill_answers = evaluate.read_cloze(ROOT / "data" / "rooms-cloze-nofill.tsv")
        nofill, _, _ = evaluate.cloze(ckpt.params, ckpt.vocab, nofill_prompts, nofill_answers)
        results["cells"][cell] = {
            "hidden": H, "params": n_params(cell, V, H), "steps": ckpt.step,
            "accuracy": sum(f == a for f, a in zip(fills, answers)) / len(answers), "nofill_accuracy": nofill,
            "by_gap": by_gap, "by_form": {k: sum(v) / len(v) if v else None for k, v in forms.items()},
            "curve": curve,
            "breakthrough_s": next((t for t, acc in curve if acc >= 0.5), None),
        }
        print(json.dumps({cell: {k: v for k, v in results["cells"][cell].items() if k != "curve"}}), flush=True)
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(results, indent=1))
    print(table(results))
    if args.png:
        plot(results, args.png)


def plot(results, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for cell, r in results["cells"].items():
        t, acc = zip(*r["curve"])
        ax.plot([s / 60 for s in t], acc, marker=".", label=f"{cell} (H={r['hidden']})")
    ax.set_xlabel("minutes of training (2 cores)")
    ax.set_ylabel("cloze accuracy, 200 filler stories")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    print(f"wrote {png}", file=sys.stderr)


def table(results):
    cells = results["cells"]
    buckets = list(next(iter(cells.values()))["by_gap"])
    lines = ["| cell | H | parameters | steps | " + " | ".join(f"gap {b}" for b in buckets)
             + " | form 1 | form 2 | all (fillers) | no fillers | first score >= 0.5 |",
             "|---|---|---|---|" + "---|" * len(buckets) + "---|---|---|---|---|"]
    for cell, r in cells.items():
        gaps = " | ".join("-" if a is None else f"{a:.1%} (n={n})" for a, n in r["by_gap"].values())
        brk = "never" if r["breakthrough_s"] is None else f"{r['breakthrough_s'] / 60:.1f} min"
        form1, form2 = ("-" if a is None else f"{a:.1%}" for a in r.get("by_form", {0: None, 1: None}).values())
        lines.append(f"| {cell} | {r['hidden']} | {r['params']:,} | {r['steps']:,} | {gaps} | {form1} | {form2} | "
                     f"{r['accuracy']:.1%} | "
                     f"{r['nofill_accuracy']:.1%} | {brk} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

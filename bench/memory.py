"""Does the LSTM remember where a vanilla RNN forgets? The rooms cloze task for the tanh RNN, the ReLU RNN,
the GRU and the LSTM at equal parameter count and equal training time, on this machine.

    python bench/memory.py --minutes 6 --recipe own --png docs/memory-own.png    # each cell its own recipe
    python bench/memory.py --minutes 4 --recipe same --png docs/memory-same.png  # all with configs/rooms.yaml
    python bench/memory.py --replot --recipe own --png docs/memory-own.png       # table and curves again
    python bench/memory.py --minutes 8 --config configs/rooms-gru.yaml           # all with the GRU's recipe
    python bench/memory.py --minutes 6 --recipe own --cloze data/rooms-cloze-fillers.tsv \
        --out bench/results/memory-open.json --png docs/memory-open.png          # on fillers never trained on

Each cell trains for the same wall-clock budget, one after the other, its hidden size chosen so its
parameter count matches the 256-unit LSTM's. --recipe same: every cell with --config (default
configs/rooms.yaml, the LSTM's recipe; the RNNs have no gate to bias); --recipe own: each with the recipe
that suits it (OWN below: the LSTM's configs/rooms.yaml, the GRU's configs/rooms-gru.yaml, the RNNs
--config with the ReLU RNN's orthogonal recurrent weights and lower rate). During training the cloze
accuracy is scored every 100 steps on 200 filler stories (the curve, and the minutes to 50%, 90% and
98%); at the end every model is scored on data/rooms-cloze.tsv, by gap length and by story form, and
on data/rooms-cloze-nofill.tsv and data/rooms-cloze-names.tsv (names never trained on); --cloze names
another set for the curve and the table's first columns. Results go to bench/results/memory-<recipe>.json
(memory-<recipe>-<config>.json with another --config); the table, Markdown for docs/memory.md, to stdout.
"""

import json
import pathlib
import sys
import tempfile

import numpy as np

import runner  # bench/runner.py, beside this script
from charlstm import checkpoint, corpus, evaluate, model

BUCKETS = ((0, 40), (40, 80), (80, 120), (120, 10_000))
LEVELS = (0.5, 0.9, 0.98)  # the cloze accuracies whose first minute the table reports
FORMS = ("form 1 (the other one)", "form 2 (the newcomer)")  # "A walks in ..., B also ..."; "A and B ..., later C"


CELLS_RUN = {  # name: (cell, overrides every run of it needs)
    "rnn": ("rnn", ["model.forget_bias=null"]),
    "rnn-relu": ("rnn", ["model.forget_bias=null", "model.nonlinearity=relu"]),
    "gru": ("gru", []),
    "lstm": ("lstm", []),
}
OWN = {  # --recipe own: each cell's recipe (a config file of its own, or settings on top of --config)
    "rnn": [],
    "rnn-relu": ["model.orthogonal=true", "optim.lr=0.001"],  # a ReLU RNN with W_hh orthogonal (Le et al. 2015's IRNN idea)
    "gru": ["--config", str(runner.CONFIGS / "rooms-gru.yaml")],
    "lstm": ["--config", str(runner.CONFIGS / "rooms.yaml")],
}


def n_params(cell, V, H):
    return sum(int(np.prod(s)) for s in model.param_shapes(model.Spec(cell, V, H, 1)).values())


def matched_hidden(cell, V, target):
    """The hidden size whose one-layer model has the parameter count closest to target."""
    return min(range(8, 2048), key=lambda H: abs(n_params(cell, V, H) - target))


def main():
    ap = runner.parser(__doc__)
    ap.add_argument("--minutes", type=float, default=10.0, help="training budget per cell [default: %(default)s]")
    ap.add_argument("--lstm-hidden", type=int, default=256, help="the LSTM's units; the others match its "
                                                                  "parameter count [default: %(default)s]")
    ap.add_argument("--cells", default="rnn,rnn-relu,gru,lstm", help="[default: %(default)s]")
    ap.add_argument("--recipe", choices=["same", "own"], default="same",
                    help="every cell with --config, or each with its own (OWN) [default: %(default)s]")
    ap.add_argument("--config", default=str(runner.CONFIGS / "rooms.yaml"),
                    help="the shared recipe [default: configs/rooms.yaml, the LSTM's]")
    ap.add_argument("--cloze", type=pathlib.Path, default=runner.DATA / "rooms-cloze.tsv",
                    help="the cloze set of the curve (its first 200 stories) and of the table "
                         "[default: data/rooms-cloze.tsv]")
    ap.add_argument("--results", "--out", dest="out", help="the results file [default: "
                                                          "bench/results/memory-<recipe>.json]")
    ap.add_argument("--png", help="draw the cloze-accuracy curves to this PNG (matplotlib)")
    ap.add_argument("--table", "--replot", dest="replot", action="store_true",
                    help="train nothing: the table (and with --png the curves) of the results file")
    args = ap.parse_args()
    config = pathlib.Path(args.config)
    other = "" if config.resolve() == runner.CONFIGS / "rooms.yaml" else "-" + config.stem
    args.out = args.out or str(runner.RESULTS / f"memory-{args.recipe}{other}.json")
    if args.replot:
        results = runner.load(args.out)
        print(table(results))
        if args.png:
            plot(results, args.png)
        return
    unknown = [c for c in args.cells.split(",") if c not in CELLS_RUN]
    if unknown:
        ap.error(f"unknown cell {', '.join(unknown)}; choose from {', '.join(CELLS_RUN)}")

    from charlstm import config as config_mod
    from charlstm.data import ASCII_CODES

    chars = set((runner.DATA / "rooms-train.txt").read_text())
    if config_mod.load(args.config, []).data.vocab == "ascii":  # the vocabulary the models are built with
        chars |= {chr(c) for c in ASCII_CODES}
    V = len(chars)
    target = n_params("lstm", V, args.lstm_hidden)
    work = pathlib.Path(tempfile.mkdtemp(prefix="charlstm-memory-"))
    probe = work / "cloze200.tsv"
    probe.write_text("".join(args.cloze.read_text().splitlines(keepends=True)[:200]))
    results = {"minutes": args.minutes, "recipe": args.recipe, "params_target": target, "cells": {}}
    for name in args.cells.split(","):
        cell, needed = CELLS_RUN[name]
        H = args.lstm_hidden if cell == "lstm" else matched_hidden(cell, V, target)
        run = work / name
        recipe = OWN[name] if args.recipe == "own" else []
        config = recipe[1] if recipe[:1] == ["--config"] else args.config
        sets = [s for s in recipe if s != "--config" and s != config]
        print(f"{name}: H={H}, {n_params(cell, V, H):,} parameters, {args.minutes} minutes, "
              f"{' '.join(needed + sets) or 'the recipe as it is'}", file=sys.stderr, flush=True)
        proc = runner.train(runner.DATA / "rooms-train.txt", run, "--config", config, "--time-budget",
                            f"{args.minutes}m", "--steps", "1000000",
                            sets=[f"model.cell={cell}", f"model.hidden={H}", f"train.cloze={probe}",
                                  "train.cloze_every=100", *needed, *sets])
        if proc.returncode:
            sys.exit(f"memory.py: {name} failed: {runner.failure(proc)}")
        curve = [(r["elapsed"], r["cloze_accuracy"]) for r in runner.metrics(run) if "cloze_accuracy" in r]
        reach = {str(level): (runner.first_reaching(curve, level) or (None,))[0] for level in LEVELS}
        results["cells"][name] = {"hidden": H, "params": n_params(cell, V, H), "cloze": str(args.cloze),
                                  **scores(checkpoint.load(run / "latest.npz"), args.cloze), "curve": curve,
                                  "breakthrough_s": reach["0.5"], "reach_s": reach, "settings": needed + sets}
        print(json.dumps({name: {k: v for k, v in results["cells"][name].items() if k != "curve"}}), flush=True)
        runner.save(args.out, results)  # after every cell: a stopped study keeps what it finished
    print(table(results))
    if args.png:
        plot(results, args.png)


def scores(ckpt, cloze):
    """A trained model's cloze accuracy on the set, by gap length and by story form, and on the sets with
    no fillers and with names never trained on."""
    prompts, answers = evaluate.read_cloze(cloze)
    _, _, fills = evaluate.cloze(ckpt.params, ckpt.vocab, prompts, answers, spec=ckpt.spec)
    by_gap = {}
    for lo, hi in BUCKETS:
        hits = [f == a for p, a, f in zip(prompts, answers, fills) if lo <= corpus.story_gap(p) < hi]
        by_gap[f"{lo}-{hi if hi < 10_000 else ''}"] = (sum(hits) / len(hits) if hits else None, len(hits))
    forms = {form: [] for form in FORMS}
    for p, a, f in zip(prompts, answers, fills):
        forms[FORMS[" together, later " in p]].append(f == a)
    nofill = evaluate.read_cloze(runner.DATA / "rooms-cloze-nofill.tsv")
    nofill, _, _ = evaluate.cloze(ckpt.params, ckpt.vocab, *nofill, spec=ckpt.spec)
    unseen = evaluate.read_cloze(runner.DATA / "rooms-cloze-names.tsv")  # names never trained on
    unseen, _, _ = evaluate.cloze(ckpt.params, ckpt.vocab, *unseen, unknown="skip", spec=ckpt.spec)
    return {"steps": ckpt.step, "accuracy": sum(f == a for f, a in zip(fills, answers)) / len(answers),
            "nofill_accuracy": nofill, "unseen_names_accuracy": unseen, "by_gap": by_gap,
            "by_form": {k: sum(v) / len(v) if v else None for k, v in forms.items()}}


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
             + " | form 1 | form 2 | all (fillers) | no fillers | unseen names | 50% at | 90% at | 98% at |",
             "|---|---|---|---|" + "---|" * len(buckets) + "---|---|---|---|---|---|---|---|"]
    for cell, r in cells.items():
        gaps = " | ".join("-" if a is None else f"{a:.1%} (n={n})" for a, n in r["by_gap"].values())
        reach = r.get("reach_s") or {"0.5": r["breakthrough_s"]}
        times = " | ".join("never" if reach.get(str(level)) is None else f"{reach[str(level)] / 60:.1f} min"
                           for level in LEVELS)
        unseen = "-" if r.get("unseen_names_accuracy") is None else f"{r['unseen_names_accuracy']:.1%}"
        form1, form2 = ("-" if a is None else f"{a:.1%}" for a in r.get("by_form", {0: None, 1: None}).values())
        lines.append(f"| {cell} | {r['hidden']} | {r['params']:,} | {r['steps']:,} | {gaps} | {form1} | {form2} | "
                     f"{r['accuracy']:.1%} | {r['nofill_accuracy']:.1%} | {unseen} | {times} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

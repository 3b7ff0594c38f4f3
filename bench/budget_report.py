"""Tables and curves of the runs bench/budget.py and bench/quality.py recorded, for docs/quality.md.

    python bench/budget_report.py shk py                       # Markdown tables, one per corpus
    python bench/budget_report.py shk --png docs/budget-shk.png --quality auto-shk-10m --default default-shk

A table row is one run: its budget, shape, what auto set (batch, dropout, steps), what it reached
(best and final validation loss, the last training loss) and the two quantities the rule reads:
characters trained per parameter, and the overfitting pressure (epochs x parameters per character).
"""

import numpy as np

import runner  # bench/runner.py, beside this script

RESULTS = runner.RESULTS


def parse():
    ap = runner.parser(__doc__)
    ap.add_argument("names", nargs="+", help="budget-NAME.json files of bench/results")
    ap.add_argument("--png", help="draw the runs' curves (and --quality's, --default's) to this PNG")
    ap.add_argument("--quality", help="quality-NAME.json of bench/quality.py: its charlstm and PyTorch curves")
    ap.add_argument("--default", help="budget-NAME.json whose runs are the fixed default, drawn dashed")
    ap.add_argument("--title", default="", help="the plot's title")
    return ap.parse_args()


def picked(runs):
    """{minutes: the run of the shape auto's rule takes}: the largest (in parameters) whose planned steps
    reach autosize.STEPS, else the smallest; runs with a label (a variant) are left out. The curves drawn
    are those of auto's own runs (shape "auto") where a budget has one."""
    from charlstm.autosize import STEPS

    by_budget = {}
    for r in runs:
        if not r.get("label"):
            by_budget.setdefault(r["minutes"], []).append(r)
    chosen = {}
    for minutes, group in by_budget.items():
        group.sort(key=lambda r: r["parameters"])
        reaching = [r for r in group if r["config"]["train"]["steps"] >= STEPS]
        chosen[minutes] = reaching[-1] if reaching else group[0]
    return chosen


def table(name):
    data = runner.load(RESULTS / f"budget-{name}.json")
    rule = {id(r) for r in picked(data["runs"]).values()}
    best = {}
    for r in data["runs"]:
        if not r.get("label") and r["best"] < best.get(r["minutes"], (9e9,))[0]:
            best[r["minutes"]] = (r["best"], id(r))
    best = {i for _, i in best.values()}
    corpus_chars = data.get("train_chars")
    lines = [f"{name}: {data['corpus']}" + (f", validated on {data['val']}" if data.get("val") else ""),
             "", "| budget | shape | batch | dropout (layers/decoder) | steps done/planned | best val | final val | "
             "train loss | chars per parameter | pressure |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(data["runs"], key=lambda r: (r["minutes"], r.get("parameters", 0))):
        c = r["config"]
        m, d, t = c["model"], c["data"], c["train"]
        seen = r["steps_done"] * d["batch"] * d["window"]
        ratio = seen / r["parameters"] if r.get("parameters") else float("nan")
        pressure = seen * r.get("parameters", np.nan) / corpus_chars ** 2 if corpus_chars else float("nan")
        shape = f"{m['hidden']}x{m['layers']}" + (f" {r['label']}" if r.get("label") else
                                                   " auto run" if r["shape"] == "auto" else "")
        shape += " (auto's pick)" * (id(r) in rule) + " **best**" * (id(r) in best)
        lines.append(f"| {r['minutes']:g} min | {shape} | {d['batch']} | {m['dropout']}/{m['decoder_dropout']} | "
                     f"{r['steps_done']:,}/{t['steps']:,} | {r['best']:.4f} | {r['final']:.4f} | "
                     f"{r['train_loss']:.3f} | {ratio:.1f} | {pressure:.1f} |")
    return "\n".join(lines)


def draw(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in args.names:
        runs = runner.load(RESULTS / f"budget-{name}.json")["runs"]
        chosen = picked(runs)
        chosen.update({r["minutes"]: r for r in runs if r["shape"] == "auto" and r.get("label", "") in ("", "auto")})
        quality = runner.load(RESULTS / f"quality-{args.quality}.json") if args.quality else {}
        for minutes, r in sorted(chosen.items()):
            if minutes == quality.get("minutes"):  # the auto run itself, from bench/quality.py
                r = {"curve": quality["charlstm"]["curve"], "minutes": minutes, "config": r["config"]}
            t, v, _ = zip(*r["curve"])
            ax.plot(np.array(t) / 60, v, marker=".", label=f"auto, {r['minutes']:g} min "
                    f"({r['config']['model']['hidden']}x{r['config']['model']['layers']})")
    if args.default:
        for r in runner.load(RESULTS / f"budget-{args.default}.json")["runs"]:
            t, v, _ = zip(*r["curve"])
            ax.plot(np.array(t) / 60, v, "--", color="grey", label="the fixed default (256x2, constant rate)")
    if args.quality:
        q = runner.load(RESULTS / f"quality-{args.quality}.json")
        if "torch" in q:
            t, v, _ = zip(*q["torch"]["curve"])
            ax.plot(np.array(t) / 60, v, ":", color="black", label="PyTorch nn.LSTM, auto's choice, same budget")
    ax.set_title(args.title)
    ax.set_xlabel("minutes of training (2 cores)")
    ax.set_ylabel("validation loss (nats/char)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)


def main():
    args = parse()
    for name in args.names:
        print(table(name))
        print()
    if args.png:
        draw(args)


if __name__ == "__main__":
    main()

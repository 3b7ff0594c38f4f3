"""Steps to a validation loss: how many optimizer steps each run took to first validate at or below each
given loss, read from the runs' metrics.jsonl; the figure of README's Fine-tune section
(docs/training.md). The runs are README's worked example, trained with `charlstm train` beforehand.

    python bench/finetune.py runs/numbered-tuned runs/numbered-scratch --loss 2.3 2.1
    python bench/finetune.py RUN... --loss X... --results bench/results/finetune-shk.json

Steps are counted, not seconds, so a busy machine changes nothing; a validation every train.eval_every
steps bounds the resolution (the tables say "by step N": the first validation at or below the loss).
"""

import argparse
import json
import pathlib


def validations(run_dir):
    """[(step, validation loss)] of a run, in order."""
    records = map(json.loads, (pathlib.Path(run_dir) / "metrics.jsonl").read_text(encoding="utf-8").splitlines())
    return [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]


def first_at_or_below(curve, loss):
    """The first step whose validation loss is at or below loss, or None."""
    return next((step for step, val in curve if val <= loss), None)


def table(runs, losses):
    """Markdown: a row per run, a column per loss, and the last validation."""
    curves = {run: validations(run) for run in runs}
    lines = ["| run | " + " | ".join(f"by step (loss <= {x:g})" for x in losses) + " | last validation |",
             "|---|" + "---|" * (len(losses) + 1)]
    for run, curve in curves.items():
        cells = [str(first_at_or_below(curve, x) or "not reached") for x in losses]
        step, val = curve[-1] if curve else ("-", float("nan"))
        lines.append(f"| {run} | " + " | ".join(cells) + f" | {val:.3f} at step {step} |")
    return lines, curves


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories")
    parser.add_argument("--loss", nargs="+", type=float, required=True, help="validation losses, nats/char")
    parser.add_argument("--results", help="also write the runs' validation curves to this JSON file")
    args = parser.parse_args()
    lines, curves = table(args.runs, args.loss)
    print("\n".join(lines))
    if args.results:
        pathlib.Path(args.results).write_text(json.dumps(curves, indent=1) + "\n")


if __name__ == "__main__":
    main()

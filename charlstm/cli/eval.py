"""`charlstm eval`: the cross-entropy of files (evaluate.score_files) and the accuracy of greedy blank
filling (evaluate.cloze); on a terminal, a progress bar for a long text.
"""

import functools
import json
import os
import sys

import click

from .shared import (CHECKPOINT_HELP, ERRORS, ERRORS_HELP, UNKNOWN, UNKNOWN_HELP, load_model,
                     refuse_run_directories, warn)


@click.command("eval")
@click.argument("files", nargs=-1)
@click.option("-c", "--checkpoint", "ckpt_path", metavar="CKPT", help=CHECKPOINT_HELP)
@click.option("--cloze", "cloze_path", metavar="FILE",
              help="Score greedy blank filling on PROMPT<TAB>ANSWER lines: the prompt holds one ___, the "
                   "answer is one word (letters, digits, ' and -: a fill ends at anything else).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="text: lines for a person; json: one JSON object with every figure.")
@click.option("--verbose", "-v", is_flag=True,
              help="With --cloze: list every line's answer and the model's fill (a table with a header line; with "
                   "--format json, an \"items\" list in the JSON object).")
@click.option("--unknown", type=UNKNOWN, default="error", show_default=True, help=UNKNOWN_HELP)
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of FILES and the --cloze file.")
@click.option("--errors", type=ERRORS, default="strict", show_default=True, help=ERRORS_HELP)
@click.option("--window", type=click.IntRange(min=1),
              help="Characters per forward pass [default: 256; for a model with a pointer, its training window]. "
                   "Speed and memory only, except with a pointer, which sees the earlier positions of its own "
                   "window: then the score depends on it.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or warnings; errors only.")
def eval_(files, ckpt_path, cloze_path, fmt, verbose, unknown, encoding, errors, window, quiet):
    """Score FILES (or stdin, -): cross-entropy, bits per character, perplexity.

    The state starts at zero and is carried through each whole file (files run as parallel
    streams; several get a line each, and one for all); the score is the mean over t = 1..N-1
    of -log p(x_t | x_0..x_{t-1}), in nats. A
    model trained on lines (data.mode lines) scores each line from the zero state instead.
    With --cloze, the exact-match accuracy of greedy blank filling. On a terminal, a text of
    50,000 characters or more shows a progress bar on stderr.
    """
    from .. import evaluate

    refuse_run_directories(files, "a text to score", "eval")
    if verbose and not cloze_path:  # it lists the cloze lines; without them it was silently ignored
        raise click.UsageError("--verbose lists the --cloze lines one by one: give --cloze FILE")
    model = load_model(ckpt_path, quiet)
    if not files and not cloze_path:
        if sys.stdin.isatty():
            raise click.UsageError("give files to score, - for stdin, or --cloze FILE")
        files = ("-",)
    warnings = None if quiet else warn
    report = {}
    if files:
        trained = model.checkpoint.config.data.window
        if model.checkpoint.spec.pointer and window is not None and window != trained and warnings:
            warnings(f"note: this model's pointer sees only the positions of its window; it was trained and "
                     f"validated with windows of {trained}, and --window {window} scores it differently")
        progress = functools.partial(_scoring_bar, quiet=quiet)
        report.update(model.score_files(files, encoding, errors, unknown, warnings, window, progress))
    if cloze_path:
        prompts, answers = evaluate.read_cloze(cloze_path, encoding, errors)
        scored = model.cloze(prompts, answers, unknown, warnings)
        fills = scored.pop("fills")  # listed by --verbose, not reported
        report.update(scored)
        if verbose and fmt == "json":  # in the one JSON object, which stays the whole of stdout
            report["items"] = [{"prompt": p, "answer": a, "fill": f, "ok": a == f}
                               for p, a, f in zip(prompts, answers, fills)]
        elif verbose:
            click.echo("\t".join(("result", "answer", "fill", "prompt")))
            for p, a, f in zip(prompts, answers, fills):
                click.echo(f"{'ok' if a == f else 'MISS'}\t{a}\t{f}\t{p}")
    if fmt == "json":
        click.echo(json.dumps(report))
    else:
        for line in evaluate.report_lines(report):
            click.echo(line)


LONG_TEXT = 50_000  # characters: a shorter text scores in a second or two, with no progress bar


def _scoring_bar(total, quiet=False):
    """The progress bar of `charlstm eval` (characters scored, characters per second) on stderr: only on a
    terminal, for a text of LONG_TEXT characters or more, and not with --quiet; None otherwise. A long
    text is announced with its length on stderr first, terminal or not: it may take minutes."""
    if quiet or total < LONG_TEXT:
        return None
    click.echo(f"scoring {total:,} characters", err=True)
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    try:  # a terminal that reports no size (a bare pty) gets nothing from tqdm: give it one
        sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (OSError, ValueError):
        sized = False
    shape = {"dynamic_ncols": True} if sized else {"ncols": 100, "nrows": 24}
    return tqdm(total=total, desc="scoring", unit="char", unit_scale=True, file=sys.stderr, leave=False, **shape)


command = eval_  # what cli/__init__.py registers

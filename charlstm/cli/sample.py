"""`charlstm sample`: prompts, from the arguments, stdin (one per line) or a prompt loop at the terminal
(interactive.py), completed by the model (api.Model.complete) and written as they are made (streams.Writer).
"""

import re
import sys

import click

from .shared import CHECKPOINT_HELP, UNKNOWN, UNKNOWN_HELP, FiniteFloat, load_model, refuse_run_directories, warn

GREEDY_HINT = "--greedy always takes the likeliest character"  # what -t 0 means elsewhere


@click.command()
@click.argument("prompts", nargs=-1)
@click.option("-c", "--checkpoint", "ckpt_path", metavar="CKPT", help=CHECKPOINT_HELP)
@click.option("-n", "--length", default=200, show_default=True, type=click.IntRange(min=0),
              help="Most characters generated per sample.")
@click.option("-t", "--temperature", default=1.0, show_default=True, type=FiniteFloat(min=0, min_open=True, zero_hint=GREEDY_HINT),
              help="Below 1: safer; above 1: wilder.")
@click.option("--top-k", default=0, type=click.IntRange(min=0), help="Sample among the K likeliest characters (0: all).")
@click.option("--top-p", default=1.0, type=FiniteFloat(0, 1, min_open=True, zero_hint=GREEDY_HINT),
              help="Sample among the likeliest characters holding probability P.")
@click.option("--greedy", is_flag=True,
              help="Always take the likeliest character (so -t, --top-k and --top-p do nothing, and "
                   "--num-samples above 1 is refused).")
@click.option("--seed", type=click.IntRange(min=0),
              help="Sample i (from 0, over all prompts and samples) uses seed SEED+i [default: random; jsonl "
                   "shows each sample's seed].")
@click.option("--until", multiple=True, metavar="STR",
              help="Stop after the first occurrence of STR (repeatable; not empty; \\n is a newline, \\t a tab, "
                   "\\\\ a backslash, as in --separator).")
@click.option("--num-samples", default=1, show_default=True, type=click.IntRange(min=1), help="Samples per prompt.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="jsonl: one object per sample with prompt, completion, text, logprob and seed (and "
                   "\"interrupted\": true for those Ctrl-C cut short).")
@click.option("--separator", metavar="STR",
              help="Text format: a line written between two samples (a newline is added if it has none, so "
                   "'---' is a line of its own); \\n and \\t are understood [default: \\n, a blank line; "
                   "prompts from stdin: nothing].")
@click.option("--unknown", type=UNKNOWN, default="error", show_default=True, help=UNKNOWN_HELP)
@click.option("--batch", default=64, show_default=True, type=click.IntRange(min=1),
              help="Sequences advanced together (faster); 1: every sample streams as it is made.")
@click.option("-i", "--interactive", is_flag=True,
              help="A prompt loop at the terminal, with line editing and history: each line is completed with "
                   "the options, which :set changes (:set temperature 0.5); Ctrl-C cancels a completion, Ctrl-D "
                   "or :quit leaves [default: on when no prompt is given and stdin is a terminal].")
def sample(prompts, ckpt_path, length, temperature, top_k, top_p, greedy, seed, until, num_samples, fmt, separator,
           unknown, batch, interactive):
    """Complete PROMPTS with text from a trained model.

    \b
    With no prompt at a terminal (or -i), a prompt loop: type a prompt, get its
    completion; :set temperature 0.5 changes an option, :help lists them.
    With - as the prompt, or no prompt while stdin is a pipe, prompts are read
    from stdin, one per line, and each completion ends at the end of its line:
        cut -f1 questions.tsv | charlstm sample -c runs/rooms --greedy
    A prompt holding ___ is filled in at the blank instead of continued:
        charlstm sample -c runs/rooms --greedy \\
    'Al walks in to the room, Bo also walks in to the room. Al said hi to ___.'
    Every prompt is read as the start of a line, after a newline.

    \b
    Text goes out as it is made, to a pipe too, in memory that does not grow
    with --length; Ctrl-C stops, keeping what was written. Samples go out in
    the order of the prompts, separated by a blank line (--separator): the
    first unfinished one streams, the others of its batch wait for it.

    \b
    Sample i (from 0, counting every sample of every prompt in order) draws
    with seed SEED+i, whatever else shares its batch; jsonl reports it, and
    that prompt alone with --seed set to it gives the same text:
        charlstm sample --seed 7 --num-samples 3 --format jsonl 'Mady'
        charlstm sample --seed 9 'Mady'            # the third sample again
    """
    import numpy as np

    from .. import sample as sample_mod
    from ..reading import check_text
    from ..errors import DataError
    from ..streams import Writer, prompt_batches

    until = tuple(_unescape(u) for u in until)
    _check_choices(greedy, temperature, top_k, top_p, num_samples, until)
    if interactive and prompts:
        raise click.UsageError("-i reads prompts at the terminal: give PROMPTS or -i, not both")
    refuse_run_directories(prompts, "a prompt", "sample")
    model = load_model(ckpt_path)
    for n, p in enumerate(prompts, 1):
        check_text(p, f"prompt {n}")
    from_stdin = prompts == ("-",) or (not prompts and not sys.stdin.isatty())
    if "-" in prompts and not from_stdin:
        raise click.UsageError("- (stdin) cannot be mixed with prompts given as arguments")
    if separator is not None and fmt != "text":
        raise click.UsageError("--separator applies to --format text only")
    seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed
    if not prompts and not from_stdin:  # -i, or no prompt at a terminal
        _talk(model, fmt, batch, length=length, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
              until=until, num_samples=num_samples, seed=seed, unknown=unknown)
        return
    if interactive:
        warn("note: stdin is not a terminal, so -i reads the prompts from it, one per line")
    options = sample_mod.Options(length=length, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                                 until=until, stop_at_newline=from_stdin, unknown=unknown)
    if separator is None:
        separator = "" if from_stdin else "\n"
    if from_stdin:
        batches = prompt_batches(sys.stdin.buffer, max(1, batch // num_samples))
    else:
        batches = [list(prompts)]
    writer = Writer(sys.stdout, model.vocab, fmt, _as_line(_unescape(separator)), None if greedy else seed,
                    tty=sys.stdout.isatty())
    try:
        n = model.complete(batches, options, seed, writer, num_samples, batch, warn)
    except KeyboardInterrupt:
        writer.interrupted()  # jsonl holds records until they are done: keep what was made
        raise
    if n == 0:
        why = "" if prompts else " (it is not a terminal, so prompts are read from it, one per line)"
        raise DataError(f"no prompt: stdin was empty{why}; give a prompt as an argument, '' for none")


def _talk(model, fmt, batch, **settings):
    """The prompt loop of -i (interactive.py): prompts at the terminal, completions on stdout."""
    from .. import interactive

    read_line = interactive.terminal_reader(sys.stdin, sys.stdout, sys.stderr)
    interactive.talk(model, interactive.Settings(**settings), read_line, warn, sys.stdout, fmt, batch)


def _check_choices(greedy, temperature, top_k, top_p, num_samples, until):
    """Options that would do nothing: refused when the result would mislead (--num-samples with --greedy
    gives the same text N times; --until '' would match at once), a note when they are only ignored."""
    if "" in until:
        raise click.UsageError("--until '' matches everywhere; give the text to stop after, e.g. --until '.'")
    if not greedy:
        return
    if num_samples > 1:
        raise click.UsageError(f"--greedy gives the same text every time: --num-samples {num_samples} would "
                               f"repeat it; leave out one of them")
    ignored = [name for name, given in (("-t", temperature != 1.0), ("--top-k", top_k != 0),
                                        ("--top-p", top_p != 1.0)) if given]
    if ignored:
        warn(f"note: --greedy always takes the likeliest character; {', '.join(ignored)} "
             f"{'has' if len(ignored) == 1 else 'have'} no effect")


def _unescape(text):
    """--separator '\\n---\\n': backslash-n and backslash-t as a newline and a tab, two backslashes as one."""
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


def _as_line(separator):
    """The separator as written between samples: ending in a newline, as every sample does, so that the
    next sample starts a line of its own ('---' would otherwise run into it); nothing stays nothing."""
    return separator if not separator or separator.endswith("\n") else separator + "\n"


command = sample  # what cli/__init__.py registers

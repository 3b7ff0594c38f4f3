"""The `charlstm` command line: parses options and calls the library, which returns values or raises
CharlstmError with a message written for users; `main` prints such errors on one line and exits 1.
Data goes to stdout; progress, warnings and errors to stderr.
"""

import functools
import json
import math
import os
import re
import sys

import click

from . import __version__

CHECKPOINT_HELP = ("Checkpoint file, or a run directory (the one of its best.npz and latest.npz with the lower "
                   "validation loss; a note says which when they differ) [default: the shipped rooms model].")
UNKNOWN = click.Choice(["error", "skip"])
UNKNOWN_HELP = "Characters missing from the model's vocabulary: stop, or drop them with a warning."
COLOUR = click.Choice(["auto", "always", "never"])


class FiniteFloat(click.FloatRange):
    """A float option that refuses NaN and infinity, which click's FloatRange lets through (NaN compares
    false with every bound): "'nan' is not a finite number", as click reports any bad value."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(number, param, ctx)


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # caught here: click itself would turn it into exit status 1
            _quiet_broken_pipe()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="charlstm")
def cli():
    """Train, sample, score and inspect character-level LSTM language models, in pure NumPy."""


# ------------------------------------------------------------------------------------------------ train


class _TrainCommand(click.Command):
    """train's help ends with examples and the defaults, read from the config when help is asked for (so
    that other commands do not pay for importing it)."""

    def format_epilog(self, ctx, formatter):
        from .config import Config

        c = Config()
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(
                "\b\nExamples:\n"
                "  charlstm train my-novel.txt                  # runs/my-novel/\n"
                "  charlstm train book.txt --time-budget 10m    # a model sized for ten minutes\n"
                "  charlstm train book.txt --config shakespeare # a preset\n"
                "  charlstm train notes/ --set model.hidden=512 --set optim.lr=1e-3\n"
                "  charlstm train book.txt --dry-run            # the config, sizes, speed\n"
                "  charlstm train --resume runs/my-novel        # continue where it stopped\n"
                "  charlstm train --resume runs/my-novel --steps 20000  # or extend it\n"
                "  charlstm train big.txt --engine torch --device cuda  # PyTorch on a GPU (docs/scale.md)")
            formatter.write_paragraph()
            formatter.write_text(
                f"Defaults: an {c.model.cell.upper()} of {c.model.layers} layers of {c.model.hidden} units, "
                f"{c.train.steps:,} steps (train.steps) of {c.data.batch} streams x {c.data.window} characters, "
                f"{c.optim.name.capitalize()} at {c.optim.lr:g}; with --time-budget and no model size given, "
                f"chosen for the budget instead (model.size auto). A preset, a file, flags or --set change them; "
                f"--dry-run shows every key and where its value comes from.")


def _preset_help():
    from . import presets

    return (f"A preset ({', '.join(presets.names())}: the files of configs/) or a YAML file of yours "
            f"[default: the defaults below].")


@cli.command(cls=_TrainCommand)
@click.argument("corpus", nargs=-1)
@click.option("--config", "config_path", metavar="NAME|FILE", help=_preset_help())
@click.option("--out", metavar="DIR", help="Run directory for checkpoints and metrics [default: runs/<corpus name>].")
@click.option("--resume", metavar="DIR", help="Continue the run in DIR from its latest.npz.")
@click.option("--steps", type=click.IntRange(min=0), help="Total optimizer steps of the run (train.steps).")
@click.option("--time-budget", metavar="DURATION",
              help="Stop cleanly, saving, after this long, e.g. 90s, 10m, 1h. Unless a model size is given (by a "
                   "preset or file that sets it, or --set model.hidden/layers), the model, dropout and schedule "
                   "are chosen for the budget, the text and this machine's measured speed, and said (model.size).")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed (train.seed).")
@click.option("--val", "val_path", metavar="FILE", help="Validate on FILE instead of the end of the corpus.")
@click.option("--encoding", help="Text encoding of the corpus (data.encoding) [default: utf-8].")
@click.option("--errors", type=click.Choice(["strict", "replace"]), help="Invalid bytes: stop, or replace by U+FFFD.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override any config key, e.g. --set optim.lr=3e-3 (repeatable; applied last).")
@click.option("--force", is_flag=True, help="Start over in an --out that already holds a run, deleting it.")
@click.option("--engine", type=click.Choice(["numpy", "torch"]),
              help="What computes the steps (train.engine): NumPy, or PyTorch (pip install 'charlstm[torch]'; "
                   "under torchrun, every process a share of the batch) [default: numpy].")
@click.option("--device", type=click.Choice(["cpu", "cuda", "mps"]),
              help="Where the torch engine trains (train.device) [default: cpu].")
@click.option("--dry-run", is_flag=True,
              help="Print the configuration (each value with its origin), the corpus and model sizes and the "
                   "time per 1,000 steps (a few steps timed), and exit; nothing is written.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or messages; errors only.")
def train(corpus, config_path, out, resume, steps, time_budget, seed, val_path, encoding, errors, overrides,
          force, engine, device, dry_run, quiet):
    """Train a model on CORPUS: text files, directories of text files, or - for stdin.
    With no CORPUS, train the rooms memory demo (data/rooms-train.txt, the rooms preset).

    The hidden state is carried from window to window (truncated backpropagation through time).
    Checkpoints go to the run directory: latest.npz every train.save_every steps and at the end,
    best.npz at the lowest validation loss (the validation where a run stops counts too). Ctrl-C
    saves latest.npz and exits (a second one asks before a third aborts the save); --resume
    continues bit for bit where the run stopped.
    """
    import signal

    from .errors import Interrupted
    from .launch import prepare

    if resume and config_path:
        raise click.UsageError("--config cannot be combined with --resume: the run keeps its config")
    if resume and out and out != resume:
        raise click.UsageError("--out cannot differ from --resume: a resumed run stays in its directory")
    flags = {"train.steps": steps, "train.time_budget": time_budget, "train.seed": seed,
             "data.encoding": encoding, "data.errors": errors, "train.engine": engine, "train.device": device}
    trainer = prepare(corpus, config_path, out, resume, flags, overrides, val_path, force, quiet)
    if dry_run:
        for line in trainer.dry_run():
            click.echo(line)
        return
    try:
        trainer.run()
    except Interrupted as e:
        # stopped on the user's signal: the run is saved and the process is on its way out, where a
        # KeyboardInterrupt (another Ctrl-C) would print a traceback from an exit handler
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        if trainer.main:  # under torchrun, rank 0 speaks for all
            click.echo(str(e), err=True)
        sys.exit(e.exit_code)


# ------------------------------------------------------------------------------------------ sample, eval


def _load_checkpoint(path):
    from . import assets, checkpoint

    if path is None:
        if not assets.MODEL.exists():
            raise click.UsageError("give a checkpoint with -c (a .npz file or a run directory)")
        path = assets.MODEL  # the shipped rooms model, data/rooms.npz
    chosen, why = checkpoint.choose(path)
    if why:
        _warn(f"note: {why}")
    return checkpoint.load(chosen)


def _warn(message):
    click.echo(message, err=True)


@cli.command()
@click.argument("prompts", nargs=-1)
@click.option("-c", "--checkpoint", "ckpt_path", metavar="CKPT", help=CHECKPOINT_HELP)
@click.option("-n", "--length", default=200, show_default=True, type=click.IntRange(min=0),
              help="Most characters generated per sample.")
@click.option("-t", "--temperature", default=1.0, show_default=True, type=FiniteFloat(min=0, min_open=True),
              help="Below 1: safer; above 1: wilder.")
@click.option("--top-k", default=0, type=click.IntRange(min=0), help="Sample among the K likeliest characters (0: all).")
@click.option("--top-p", default=1.0, type=FiniteFloat(0, 1, min_open=True),
              help="Sample among the likeliest characters holding probability P.")
@click.option("--greedy", is_flag=True, help="Always take the likeliest character.")
@click.option("--seed", type=click.IntRange(min=0),
              help="Sample i (from 0, over all prompts and samples) uses seed SEED+i [default: random; jsonl "
                   "shows each sample's seed].")
@click.option("--until", multiple=True, metavar="STR", help="Stop after the first occurrence of STR (repeatable).")
@click.option("--num-samples", default=1, show_default=True, type=click.IntRange(min=1), help="Samples per prompt.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="jsonl: one object per sample with prompt, completion, text, logprob and seed.")
@click.option("--separator", metavar="STR",
              help="Text format: written between two samples, after the first one's newline; \\n and \\t "
                   "are understood [default: \\n, a blank line; prompts from stdin: nothing].")
@click.option("--unknown", type=UNKNOWN, default="error", show_default=True, help=UNKNOWN_HELP)
@click.option("--batch", default=64, show_default=True, type=click.IntRange(min=1),
              help="Sequences advanced together (faster); 1: every sample streams as it is made.")
def sample(prompts, ckpt_path, length, temperature, top_k, top_p, greedy, seed, until, num_samples, fmt, separator,
           unknown, batch):
    """Complete PROMPTS with text from a trained model.

    \b
    With - as the prompt, or no prompt while stdin is a pipe, prompts are read
    from stdin, one per line, and each completion ends at the end of its line:
        cut -f1 questions.tsv | charlstm sample -c runs/rooms --greedy
    A prompt holding ___ is filled in at the blank instead of continued:
        charlstm sample -c runs/rooms --greedy 'Mady said hi to ___.'
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

    from . import sample as sample_mod
    from .reading import check_text
    from .errors import DataError
    from .streams import Writer, prompt_batches

    ckpt = _load_checkpoint(ckpt_path)
    for n, p in enumerate(prompts, 1):
        check_text(p, f"prompt {n}")
    from_stdin = prompts == ("-",) or (not prompts and not sys.stdin.isatty())
    if "-" in prompts and not from_stdin:
        raise click.UsageError("- (stdin) cannot be mixed with prompts given as arguments")
    if separator is not None and fmt != "text":
        raise click.UsageError("--separator applies to --format text only")
    options = sample_mod.Options(length=length, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                                 until=until, stop_at_newline=from_stdin and fmt == "text", unknown=unknown)
    seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed
    if separator is None:
        separator = "" if from_stdin else "\n"
    if from_stdin:
        batches = prompt_batches(sys.stdin.buffer, max(1, batch // num_samples))
    else:
        batches = [list(prompts) or [""]]
    writer = Writer(sys.stdout, ckpt.vocab, fmt, _unescape(separator), seed, tty=sys.stdout.isatty())
    n = sample_mod.complete(ckpt.params, ckpt.vocab, batches, options, seed, num_samples, batch, writer, _warn,
                           ckpt.spec)
    if n == 0:
        why = "" if prompts else " (it is not a terminal, so prompts are read from it, one per line)"
        raise DataError(f"no prompt: stdin was empty{why}; give a prompt as an argument, '' for none")


def _unescape(text):
    """--separator '\\n---\\n': backslash-n and backslash-t as a newline and a tab, two backslashes as one."""
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


@cli.command("eval")
@click.argument("files", nargs=-1)
@click.option("-c", "--checkpoint", "ckpt_path", metavar="CKPT", help=CHECKPOINT_HELP)
@click.option("--cloze", "cloze_path", metavar="FILE",
              help="Score greedy blank filling on PROMPT<TAB>ANSWER lines (the prompt holds ___).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--verbose", "-v", is_flag=True, help="With --cloze: list every line's answer and the model's.")
@click.option("--unknown", type=UNKNOWN, default="error", show_default=True, help=UNKNOWN_HELP)
@click.option("--encoding", default="utf-8", show_default=True)
@click.option("--window", default=256, show_default=True, type=click.IntRange(min=1),
              help="Characters per forward pass (speed and memory only; the score is the same).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or warnings; errors only.")
def eval_(files, ckpt_path, cloze_path, fmt, verbose, unknown, encoding, window, quiet):
    """Score FILES (or stdin, -): cross-entropy, bits per character, perplexity.

    The state starts at zero and is carried through each whole file (files run as parallel
    streams); the score is the mean over t = 1..N-1 of -log p(x_t | x_0..x_{t-1}), in nats.
    With --cloze, the exact-match accuracy of greedy blank filling. On a terminal, a text of
    50,000 characters or more shows a progress bar on stderr.
    """
    from . import evaluate

    ckpt = _load_checkpoint(ckpt_path)
    if not files and not cloze_path:
        if sys.stdin.isatty():
            raise click.UsageError("give files to score, - for stdin, or --cloze FILE")
        files = ("-",)
    warn = None if quiet else _warn
    report = {}
    if files:
        progress = functools.partial(_scoring_bar, quiet=quiet)
        report.update(evaluate.score_files(ckpt.params, ckpt.vocab, files, encoding, unknown, warn, window, progress,
                                           ckpt.spec))
    if cloze_path:
        prompts, answers = evaluate.read_cloze(cloze_path)
        accuracy, n, fills = evaluate.cloze(ckpt.params, ckpt.vocab, prompts, answers, unknown, warn, ckpt.spec)
        report.update({"accuracy": accuracy, "n": n})
        if verbose:
            for p, a, f in zip(prompts, answers, fills):
                click.echo(f"{'ok ' if a == f else 'MISS'}\t{a}\t{f}\t{p}")
    if fmt == "json":
        click.echo(json.dumps(report))
    else:
        for line in evaluate.report_lines(report):
            click.echo(line)


LONG_TEXT = 50_000  # characters: a shorter text scores in a second or two, with no progress bar


def _scoring_bar(total, quiet=False):
    """The progress bar of `charlstm eval` (characters scored, characters per second) on stderr: only on a
    terminal, for a text of LONG_TEXT characters or more, and not with --quiet; None otherwise."""
    if quiet or total < LONG_TEXT or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    try:  # a terminal that reports no size (a bare pty) gets nothing from tqdm: give it one
        sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (OSError, ValueError):
        sized = False
    shape = {"dynamic_ncols": True} if sized else {"ncols": 100, "nrows": 24}
    return tqdm(total=total, desc="scoring", unit="char", unit_scale=True, file=sys.stderr, leave=False, **shape)


# ------------------------------------------------------------------------------------------ inspect, plot


def _use_colour(choice):
    """--color auto: colours on a terminal unless NO_COLOR is set."""
    if choice == "auto":
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return choice == "always"


@cli.command()
@click.argument("text", required=False)
@click.option("-c", "--checkpoint", "ckpt_path", metavar="CKPT", help=CHECKPOINT_HELP)
@click.option("--show", multiple=True, metavar="QUANTITY",
              help="surprisal, forget, input, output (GRU: reset, update), cell:LAYER:UNIT or hidden:LAYER:UNIT; "
                   "repeatable; replaces the default, surprisal.")
@click.option("--top", default=0, metavar="N", type=click.IntRange(min=0),
              help="Also show the N units whose memory varies most over the text (below the surprisal or "
                   "--show rows).")
@click.option("--html", "html_path", metavar="FILE",
              help="Write a self-contained web page instead [default rows: surprisal, every gate, --top 8].")
@click.option("--color", "color", type=COLOUR, default="auto", show_default=True,
              help="auto: colours on a terminal unless NO_COLOR is set.")
@click.option("--width", type=click.IntRange(min=10), help="Wrap at this many characters [default: the terminal's].")
@click.option("--unknown", type=UNKNOWN, default="error", show_default=True, help=UNKNOWN_HELP)
def inspect(text, ckpt_path, show, top, html_path, color, width, unknown):
    """Show, character by character, what the model expects and what its gates and memory do.

    \b
    TEXT is the text to run (from the zero state, after a newline, as a prompt); - or
    no TEXT reads stdin.
        charlstm inspect -c runs/rooms 'Mady walks in to the room, ...' --top 4
        charlstm inspect -c runs/shk --show forget --show cell:0:17 'To be, or not to be'
        charlstm inspect -c runs/rooms --html gates.html 'Mady and Monica walk in ...'
    """
    from . import inspection
    from .reading import check_text, decode

    ckpt = _load_checkpoint(ckpt_path)
    if text is None or text == "-":
        if text is None and sys.stdin.isatty():
            raise click.UsageError("give a TEXT to inspect, or - to read it from stdin")
        text = decode(sys.stdin.buffer.read(), "stdin")
    check_text(text, "the text to inspect")
    text, traced = inspection.run(ckpt, text, unknown, _warn)
    if html_path:
        rows = inspection.quantities(traced, ckpt.spec, list(show) or ["surprisal", *traced["gates"]], top or 8)
        inspection.write_html(html_path, text, rows, title=f"charlstm inspect: {ckpt.path}")
        click.echo(f"wrote {html_path} ({len(rows)} quantities; open it in a browser)", err=True)
        return
    rows = inspection.quantities(traced, ckpt.spec, list(show) or ["surprisal"], top)
    use = _use_colour(color)
    truecolor = os.environ.get("COLORTERM", "").lower() in ("truecolor", "24bit")
    mode = "none" if not use else "truecolor" if truecolor else "ansi256"
    for line in inspection.render_terminal(text, rows, mode, width):
        click.echo(line, color=use)  # click would strip the colours when stdout is not a terminal


@cli.command()
@click.argument("run_dir")
@click.option("--x", "x_axis", type=click.Choice(["step", "time"]), default="step", show_default=True,
              help="Horizontal axis: optimizer steps or seconds of training.")
@click.option("--png", "png_path", metavar="FILE",
              help="Write a PNG instead (needs matplotlib: pip install 'charlstm[plot]').")
@click.option("--width", default=72, show_default=True, type=click.IntRange(min=20))
@click.option("--height", default=16, show_default=True, type=click.IntRange(min=4))
@click.option("--color", "color", type=COLOUR, default="auto", show_default=True)
def plot(run_dir, x_axis, png_path, width, height, color):
    """Draw a run's training and validation loss (and cloze accuracy) from its metrics.jsonl."""
    from . import plot as plot_mod

    if png_path:
        plot_mod.png(run_dir, png_path, x_axis)
        click.echo(f"wrote {png_path}", err=True)
        return
    use = _use_colour(color)
    for line in plot_mod.terminal(run_dir, x_axis, width, height, use):
        click.echo(line, color=use)


# ------------------------------------------------------------------------------------------------ corpus


@cli.group()
def corpus():
    """Write a corpus to stdout: the rooms memory stories, or Python source code."""


@corpus.command()
@click.option("--stories", default=30000, show_default=True, type=click.IntRange(min=0),
              help="Number of stories, one per line.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Same seed, same bytes.")
@click.option("--cast", "cast_path", metavar="FILE", help="Names to use, one per line [default: the twelve].")
@click.option("--max-gap", default=120, show_default=True, type=click.IntRange(min=0),
              help="Most characters of filler between the last entrance and the greeting (0: none).")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="Independent random streams for training text and test stories.")
@click.option("--cloze", is_flag=True, help="Write PROMPT<TAB>ANSWER lines with ___ at the greeting.")
@click.option("--open", "open_world", is_flag=True,
              help="The open world: thousands of generated names (every initial A-Z) and filler sentences "
                   "from templates, instead of the twelve names and eighteen fillers.")
@click.option("--names", type=click.Choice(["fresh", "seen", "unseen", "unseen-final", "real", "real-final",
                                            "twelve"]),
              help="With --open: fresh (three new names drawn for every story: what training uses to learn "
                   "to copy), seen (a fixed pool of 9,121), unseen or unseen-final (generated names fresh and "
                   "seen never hold), real or real-final (given names of many languages, never in training), "
                   "or the closed world's twelve [default: seen].")
@click.option("--fillers", type=click.Choice(["seen", "unseen"]),
              help="With --open: the filler sentences training uses, or those kept for tests (other templates, "
                   "other words) [default: seen].")
@click.option("--closed-share", type=FiniteFloat(0, 1),
              help="With --open: the share of stories told with the twelve names and eighteen fillers "
                   "[default: 0].")
def rooms(stories, seed, cast_path, max_gap, split, cloze, open_world, names, fillers, closed_share):
    """Stories that need memory: who said hi to whom.

    \b
    Mady walks in to the room, Monica also walks in to the room. Mady said hi to Monica.
    Mady and Monica walk in to the room together, later Richard walks in to the room. Mady said hi to Richard.

    \b
    charlstm corpus rooms --open > open.txt                   # thousands of names, every initial
    charlstm corpus rooms --open --split test --names unseen --cloze > unseen-names.tsv
    charlstm corpus rooms --open --names fresh --stories 100000 > fresh.txt   # a new cast every story
    charlstm corpus rooms --open --names twelve --closed-share 0.3 --stories 40000  # data/rooms-train.txt
    """
    from . import corpus as corpus_mod

    if open_world:
        if cast_path:
            raise click.UsageError("--cast is for the closed world; --open draws its own names")
        made = corpus_mod.open_rooms(stories, seed, names or "seen", fillers or "seen", max_gap, split,
                                     closed_share or 0.0)
    else:
        given = [f"--{k.replace('_', '-')}" for k, v in (("names", names), ("fillers", fillers),
                                                         ("closed_share", closed_share)) if v is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} needs --open")
        cast = corpus_mod.read_cast(cast_path) if cast_path else corpus_mod.CAST
        made = corpus_mod.rooms(stories, seed, cast, max_gap, split)
    for story in made:
        sys.stdout.write(f"{story.prompt}\t{story.answer}\n" if cloze else story.text + "\n")


@corpus.command()
@click.option("--max-chars", default=5_000_000, show_default=True, type=click.IntRange(min=0),
              help="Stop before this many characters.")
def pysource(max_chars):
    """The running Python's standard library source, concatenated (sorted by path, tests left out)."""
    from . import corpus as corpus_mod

    text, version = corpus_mod.pysource(max_chars)
    sys.stdout.write(text)
    click.echo(f"wrote {len(text):,} characters of the Python {version} standard library", err=True)


# -------------------------------------------------------------------------------------------------- main


def _quiet_broken_pipe():
    """The reader went away (`| head`): stop quietly with status 0, and keep Python from complaining
    when it flushes stdout at exit."""
    _detach_stdout()
    sys.exit(0)


def _detach_stdout():
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _keep_output():
    """Flush what went to stdout before a Ctrl-C (the text sampled so far), so a pipe gets all of it; a
    reader that has gone away is no error."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _detach_stdout()
    except (OSError, ValueError):
        pass


def main():
    from .errors import CharlstmError

    try:
        cli.main(standalone_mode=False)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except click.exceptions.Abort:  # Ctrl-C outside training (click turns KeyboardInterrupt into Abort)
        _keep_output()
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except CharlstmError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except Exception as e:  # a bug in charlstm: still one line, with a way to see the rest
        if os.environ.get("CHARLSTM_DEBUG"):
            raise
        click.echo(f"error: internal error ({type(e).__name__}: {e}); please report it, "
                   f"with the traceback that CHARLSTM_DEBUG=1 prints", err=True)
        sys.exit(70)


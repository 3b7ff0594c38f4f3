"""The `charlstm` command line: parses options, loads configuration and calls the library.

Library functions raise CharlstmError with messages written for users; `main` prints them on one line and
exits non-zero. Data goes to stdout, progress and messages to stderr.
"""

import os
import pathlib
import sys

import click

from . import __version__
from . import config as config_mod
from .errors import CharlstmError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # caught here: click itself would turn it into exit status 1
            _quiet_broken_pipe()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="charlstm")
def cli():
    """Train, sample and evaluate character-level LSTM language models, in pure NumPy."""


@cli.command()
@click.argument("corpus", nargs=-1)
@click.option("--config", "config_path", metavar="FILE", help="YAML config (see configs/); defaults otherwise.")
@click.option("--out", metavar="DIR", help="Run directory for checkpoints and metrics [default: runs/<corpus name>].")
@click.option("--resume", metavar="DIR", help="Continue the run in DIR from its latest.npz.")
@click.option("--steps", type=int, help="Total optimizer steps of the run (train.steps).")
@click.option("--time-budget", metavar="DURATION", help="Stop cleanly, saving, after this long, e.g. 90s, 10m, 1h.")
@click.option("--seed", type=int, help="Random seed (train.seed).")
@click.option("--val", "val_path", metavar="FILE", help="Validate on FILE instead of the end of the corpus.")
@click.option("--encoding", help="Text encoding of the corpus (data.encoding) [default: utf-8].")
@click.option("--errors", type=click.Choice(["strict", "replace"]), help="Invalid bytes: stop, or replace by U+FFFD.")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override any config key, e.g. --set optim.lr=3e-3 (repeatable; applied last).")
@click.option("--force", is_flag=True, help="Overwrite a run already in --out instead of refusing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or messages; errors only.")
def train(corpus, config_path, out, resume, steps, time_budget, seed, val_path, encoding, errors, overrides,
          force, quiet):
    """Train a model on CORPUS: text files, directories of text files, or - for stdin.
    With no CORPUS, train the rooms memory demo (data/rooms-train.txt, configs/rooms.yaml).

    The hidden state is carried from window to window (truncated backpropagation through time).
    Checkpoints go to the run directory: latest.npz every train.save_every steps and at the end,
    best.npz at the lowest validation loss. Ctrl-C saves latest.npz and exits; --resume continues
    bit for bit where the run stopped.
    """
    from . import train as train_mod

    flags = {"train": {"steps": steps, "time_budget": time_budget, "seed": seed},
             "data": {"encoding": encoding, "errors": errors}}
    mapping = {s: {k: v for k, v in values.items() if v is not None} for s, values in flags.items()}
    for section, values in config_mod.parse_overrides(overrides).items():
        mapping.setdefault(section, {}).update(values)
    if resume:
        if config_path:
            raise click.UsageError("--config cannot be combined with --resume: the run keeps its config")
        if out and out != resume:
            raise click.UsageError("--out cannot differ from --resume: a resumed run stays in its directory")
        cfg = train_mod.resume_config(resume, mapping)
        out = resume
    else:
        run_name = None
        if not corpus:  # the demo: the rooms stories with their recipe
            from . import assets

            run_name = "rooms"
            corpus, config_path = (str(assets.CORPUS),), config_path or str(assets.CONFIG)
            mapping.setdefault("train", {}).setdefault("cloze", str(assets.CLOZE))
            if not quiet:
                click.echo(f"no corpus given: training on the rooms stories ({assets.CORPUS.name}) "
                           f"with {pathlib.Path(config_path).name}", err=True)
        cfg = config_mod.load(config_path)
        config_mod.update(cfg, mapping, source="the command line")
        out = out or train_mod.default_run_dir(corpus, name=run_name)
    trainer = train_mod.Trainer(cfg, corpus, out, val_source=val_path, resume=bool(resume), quiet=quiet,
                                force=force)
    try:
        trainer.run()
    except train_mod.Interrupted as e:
        click.echo(str(e), err=True)
        sys.exit(e.exit_code)


CHECKPOINT_HELP = ("Checkpoint file, or a run directory (its best.npz, else latest.npz) "
                   "[default: the shipped rooms model].")


def _load_checkpoint(path):
    from . import assets, checkpoint

    if path is None:
        if not assets.MODEL.exists():
            raise click.UsageError("give a checkpoint with -c (a .npz file or a run directory)")
        path = assets.MODEL  # the shipped rooms model, data/rooms.npz
    return checkpoint.load(path)


def _warn(message):
    click.echo(message, err=True)


@cli.command()
@click.argument("prompts", nargs=-1)
@click.option("-c", "--checkpoint", "ckpt_path", metavar="CKPT", help=CHECKPOINT_HELP)
@click.option("-n", "--length", default=200, show_default=True, help="Most characters generated per sample.")
@click.option("-t", "--temperature", default=1.0, show_default=True, help="Below 1: safer; above 1: wilder.")
@click.option("--top-k", default=0, help="Sample among the K likeliest characters (0: all).")
@click.option("--top-p", default=1.0, help="Sample among the likeliest characters holding probability P.")
@click.option("--greedy", is_flag=True, help="Always take the likeliest character.")
@click.option("--seed", type=int, help="Same seed, same text [default: random].")
@click.option("--until", multiple=True, metavar="STR", help="Stop after the first occurrence of STR (repeatable).")
@click.option("--num-samples", default=1, show_default=True, help="Samples per prompt.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="jsonl: one object per sample with prompt, completion, text and logprob.")
@click.option("--unknown", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="Characters missing from the model's vocabulary: stop, or drop them with a warning.")
@click.option("--batch", default=64, show_default=True, help="Prompts advanced together per batch.")
def sample(prompts, ckpt_path, length, temperature, top_k, top_p, greedy, seed, until, num_samples, fmt, unknown,
           batch):
    """Complete PROMPTS with text from a trained model.

    \b
    With - as the prompt, or no prompt while stdin is a pipe, prompts are read
    from stdin, one per line, and each completion ends at the end of its line:
        cut -f1 questions.tsv | charlstm sample -c runs/rooms --greedy
    A prompt holding ___ is filled in at the blank instead of continued:
        charlstm sample -c runs/rooms --greedy 'Mady said hi to ___.'
    """
    import numpy as np

    from . import sample as sample_mod
    from .streams import Writer, prompt_batches

    if length < 0 or num_samples < 1 or batch < 1 or top_k < 0 or not 0 < top_p <= 1 or temperature <= 0:
        raise click.UsageError("--length must be >= 0, --num-samples and --batch >= 1, --top-k >= 0, "
                               "--top-p in (0, 1] and --temperature > 0")
    ckpt = _load_checkpoint(ckpt_path)
    from .data import check_text

    for n, p in enumerate(prompts, 1):
        check_text(p, f"prompt {n}")
    from_stdin = prompts == ("-",) or (not prompts and not sys.stdin.isatty())
    if "-" in prompts and not from_stdin:
        raise click.UsageError("- (stdin) cannot be mixed with prompts given as arguments")
    options = sample_mod.Options(length=length, temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
                                 until=until, stop_at_newline=from_stdin and fmt == "text", unknown=unknown)
    seed = int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed
    writer = Writer(sys.stdout, fmt, live=sys.stdout.isatty())
    params = {**ckpt.params}
    from .model import pack

    packed = pack(params)
    if from_stdin:
        batches = prompt_batches(sys.stdin.buffer, max(1, batch // num_samples))
    else:
        given = list(prompts) or [""]
        batches = (given[i : i + max(1, batch // num_samples)] for i in range(0, len(given), max(1, batch // num_samples)))
    index = 0
    for chunk in batches:
        requests = []
        for prompt in chunk:
            for _ in range(num_samples):
                requests.append(sample_mod.parse(prompt, index))
                index += 1
        on_step = writer.batch(requests)
        results = sample_mod.generate(packed, ckpt.vocab, requests, options, seed, on_step=on_step, warn=_warn)
        writer.results(results)


@cli.command("eval")
@click.argument("files", nargs=-1)
@click.option("-c", "--checkpoint", "ckpt_path", metavar="CKPT", help=CHECKPOINT_HELP)
@click.option("--cloze", "cloze_path", metavar="FILE",
              help="Score greedy blank filling on PROMPT<TAB>ANSWER lines (the prompt holds ___).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--verbose", "-v", is_flag=True, help="With --cloze: list every line's answer and the model's.")
@click.option("--unknown", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="Characters missing from the model's vocabulary: stop, or drop them with a warning.")
@click.option("--encoding", default="utf-8", show_default=True)
@click.option("--window", default=256, show_default=True, help="Characters per forward pass (speed only).")
def eval_(files, ckpt_path, cloze_path, fmt, verbose, unknown, encoding, window):
    """Score FILES (or stdin, -): cross-entropy, bits per character, perplexity.

    The state starts at zero and is carried through each whole file (files run as parallel
    streams); the score is the mean over t = 1..N-1 of -log p(x_t | x_0..x_{t-1}), in nats.
    With --cloze, the exact-match accuracy of greedy blank filling.
    """
    import json

    from . import evaluate
    from .data import describe_chars, expand_sources, read_text

    ckpt = _load_checkpoint(ckpt_path)
    if not files and not cloze_path:
        if sys.stdin.isatty():
            raise click.UsageError("give files to score, - for stdin, or --cloze FILE")
        files = ("-",)
    report = {}
    if files:
        streams = []
        for f in expand_sources(files):
            text, _ = read_text([f], encoding)
            missing = ckpt.vocab.unknown(text)
            if missing and unknown == "error":
                from .errors import DataError

                raise DataError(f"{f}: characters not in the model's vocabulary: {describe_chars(missing)} "
                                f"(--unknown skip drops them)")
            if missing:
                _warn(f"warning: {f}: dropped characters not in the vocabulary: {describe_chars(missing)}")
            streams.append(ckpt.vocab.encode(text, unknown="skip"))
        total, count = evaluate.score(ckpt.params, streams, window)
        if count == 0:
            from .errors import DataError

            raise DataError("nothing to score: each text needs at least two characters")
        report.update(evaluate.metrics(total, count))
    if cloze_path:
        prompts, answers = evaluate.read_cloze(cloze_path)
        accuracy, n, fills = evaluate.cloze(ckpt.params, ckpt.vocab, prompts, answers, unknown, _warn)
        report.update({"accuracy": accuracy, "n": n})
        if verbose:
            for p, a, f in zip(prompts, answers, fills):
                mark = "ok " if a == f else "MISS"
                click.echo(f"{mark}\t{a}\t{f}\t{p}")
    if fmt == "json":
        click.echo(json.dumps(report))
        return
    if "chars" in report:
        click.echo(f"chars        {report['chars']:,}")
        click.echo(f"nats/char    {report['nats_per_char']:.4f}")
        click.echo(f"bits/char    {report['bits_per_char']:.4f}")
        click.echo(f"perplexity   {report['perplexity']:.4f}")
    if "accuracy" in report:
        right = round(report["accuracy"] * report["n"])
        click.echo(f"cloze accuracy {report['accuracy']:.4f} ({right}/{report['n']})")


@cli.command()
@click.argument("text", required=False)
@click.option("-c", "--checkpoint", "ckpt_path", metavar="CKPT", help=CHECKPOINT_HELP)
@click.option("--show", multiple=True, metavar="QUANTITY",
              help="surprisal (default), forget, input, output (GRU: reset, update), cell:LAYER:UNIT or "
                   "hidden:LAYER:UNIT; repeatable.")
@click.option("--top", default=0, metavar="N", help="Also show the N units whose memory varies most over the text.")
@click.option("--html", "html_path", metavar="FILE", help="Write a self-contained web page instead.")
@click.option("--color", "color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="auto: colours on a terminal unless NO_COLOR is set.")
@click.option("--width", type=int, help="Wrap at this many characters [default: the terminal's width].")
@click.option("--unknown", type=click.Choice(["error", "skip"]), default="error", show_default=True)
def inspect(text, ckpt_path, show, top, html_path, color, width, unknown):
    """Show, character by character, what the model expects and what its gates and memory do.

    \b
    TEXT is the text to run (from the zero state); - or no TEXT reads stdin.
        charlstm inspect -c runs/rooms 'Mady walks in to the room, ...' --top 4
        charlstm inspect -c runs/rooms --show forget --show cell:0:17 'Mady said hi to Monica.'
        charlstm inspect -c runs/rooms --html gates.html 'Mady and Monica walk in ...'
    """
    from . import inspection

    ckpt = _load_checkpoint(ckpt_path)
    if text is None or text == "-":
        if text is None and sys.stdin.isatty():
            raise click.UsageError("give a TEXT to inspect, or - to read it from stdin")
        from .data import decode

        text = decode(sys.stdin.buffer.read(), "stdin")
    if not text:
        raise click.UsageError("the text to inspect is empty")
    from .data import check_text

    check_text(text, "the text to inspect")
    if top < 0:
        raise click.UsageError("--top cannot be negative")
    missing = ckpt.vocab.unknown(text)
    if missing:
        from .data import describe_chars

        if unknown == "error":
            from .errors import DataError

            raise DataError(f"characters not in the model's vocabulary: {describe_chars(missing)} "
                            f"(--unknown skip drops them)")
        _warn(f"warning: dropped characters not in the vocabulary: {describe_chars(missing)}")
        text = "".join(c for c in text if c in ckpt.vocab.index)
    traced = inspection.trace(ckpt.params, ckpt.vocab.encode(text))
    if html_path:
        gates = [g for g in inspection.GATE_BLOCKS[ckpt.spec.cell]]
        rows = inspection.quantities(traced, ckpt.spec, list(show) or ["surprisal", *gates], top or 8)
        page = inspection.render_html(text, rows, title=f"charlstm inspect: {ckpt.path}")
        pathlib.Path(html_path).write_text(page, encoding="utf-8")
        click.echo(f"wrote {html_path} ({len(rows)} quantities; open it in a browser)", err=True)
        return
    rows = inspection.quantities(traced, ckpt.spec, list(show) or (["surprisal"] if not top else []), top)
    if color == "auto":
        use = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    else:
        use = color == "always"
    truecolor = os.environ.get("COLORTERM", "").lower() in ("truecolor", "24bit")
    mode = "none" if not use else "truecolor" if truecolor else "ansi256"
    for line in inspection.render_terminal(text, rows, mode, width):
        click.echo(line, color=use)  # click would strip the colours when stdout is not a terminal


@cli.command()
@click.argument("run_dir")
@click.option("--x", "x_axis", type=click.Choice(["step", "time"]), default="step", show_default=True,
              help="Horizontal axis: optimizer steps or seconds of training.")
@click.option("--png", "png_path", metavar="FILE", help="Write a PNG instead (needs matplotlib: pip install 'charlstm[plot]').")
@click.option("--width", default=72, show_default=True)
@click.option("--height", default=16, show_default=True)
@click.option("--color", "color", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True)
def plot(run_dir, x_axis, png_path, width, height, color):
    """Draw a run's training and validation loss (and cloze accuracy) from its metrics.jsonl."""
    from . import plot as plot_mod

    if png_path:
        plot_mod.png(run_dir, png_path, x_axis)
        click.echo(f"wrote {png_path}", err=True)
        return
    use = (sys.stdout.isatty() and not os.environ.get("NO_COLOR")) if color == "auto" else color == "always"
    for line in plot_mod.terminal(run_dir, x_axis, max(20, width), max(4, height), use):
        click.echo(line, color=use)


@cli.group()
def corpus():
    """Write a corpus to stdout: the rooms memory stories, or Python source code."""


@corpus.command()
@click.option("--stories", default=30000, show_default=True, help="Number of stories, one per line.")
@click.option("--seed", default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--cast", "cast_path", metavar="FILE", help="Names to use, one per line [default: the twelve].")
@click.option("--max-gap", default=120, show_default=True,
              help="Most characters of filler between the last entrance and the greeting (0: none).")
@click.option("--split", type=click.Choice(["train", "test"]), default="train", show_default=True,
              help="Independent random streams for training text and test stories.")
@click.option("--cloze", is_flag=True, help="Write PROMPT<TAB>ANSWER lines with ___ at the greeting.")
def rooms(stories, seed, cast_path, max_gap, split, cloze):
    """Stories that need memory: who said hi to whom.

    \b
    Mady walks in to the room, Monica also walks in to the room. Mady said hi to Monica.
    Mady and Monica walk in to the room together, later Richard walks in to the room. Mady said hi to Richard.
    """
    from . import corpus as corpus_mod

    if stories < 0 or max_gap < 0:
        raise click.UsageError("--stories and --max-gap cannot be negative")
    cast = corpus_mod.read_cast(cast_path) if cast_path else corpus_mod.CAST
    if len(cast) < 3:
        raise click.UsageError("--cast needs at least three names")
    out = sys.stdout
    for story in corpus_mod.rooms(stories, seed, cast, max_gap, split):
        out.write(f"{story.prompt}\t{story.answer}\n" if cloze else story.text + "\n")


@corpus.command()
@click.option("--max-chars", default=5_000_000, show_default=True, help="Stop before this many characters.")
def pysource(max_chars):
    """The running Python's standard library source, concatenated (sorted by path, tests left out)."""
    from . import corpus as corpus_mod

    text, version = corpus_mod.pysource(max_chars)
    sys.stdout.write(text)
    click.echo(f"wrote {len(text):,} characters of the Python {version} standard library", err=True)


def _quiet_broken_pipe():
    """The reader went away (`| head`): stop quietly with status 0, and keep Python from complaining
    when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(0)


def main():
    try:
        cli.main(standalone_mode=False)
    except BrokenPipeError:
        _quiet_broken_pipe()
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except CharlstmError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # a bug in charlstm: still one line, with a way to see the rest
        if os.environ.get("CHARLSTM_DEBUG"):
            raise
        click.echo(f"error: internal error ({type(e).__name__}: {e}); please report it, "
                   f"with the traceback that CHARLSTM_DEBUG=1 prints", err=True)
        sys.exit(70)

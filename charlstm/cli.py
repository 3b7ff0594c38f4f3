"""The `charlstm` command line: parses options, loads configuration and calls the library.

Library functions raise CharlstmError with messages written for users; `main` prints them on one line and
exits non-zero. Data goes to stdout, progress and messages to stderr.
"""

import os
import sys

import click

from . import __version__
from . import config as config_mod
from .errors import CharlstmError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
        if not corpus:
            raise click.UsageError("give a corpus: one or more text files, a directory, or - for stdin")
        cfg = config_mod.load(config_path)
        config_mod.update(cfg, mapping, source="the command line")
        out = out or train_mod.default_run_dir(corpus)
    trainer = train_mod.Trainer(cfg, corpus, out, val_source=val_path, resume=bool(resume), quiet=quiet,
                                force=force)
    try:
        trainer.run()
    except train_mod.Interrupted as e:
        click.echo(str(e), err=True)
        sys.exit(e.exit_code)


def main():
    try:
        cli.main(standalone_mode=False)
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

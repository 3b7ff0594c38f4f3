"""`charlstm train`: the options, turned into a Trainer by api.trainer (launch.prepare), which runs it; a
stop on a signal exits with the code the Trainer gives (130, 143) after its one line.
"""

import sys

import click


class _TrainCommand(click.Command):
    """train's help ends with examples and the defaults, read from the config when help is asked for (so
    that other commands do not pay for importing it)."""

    def format_epilog(self, ctx, formatter):
        from ..config import Config

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
                "  charlstm train letters.txt --init-from runs/my-novel # fine-tune that model\n"
                "  charlstm train big.txt --engine torch --device cuda  # PyTorch on a GPU")
            formatter.write_paragraph()
            formatter.write_text(
                f"Defaults: an {c.model.cell.upper()} of {c.model.layers} layers of {c.model.hidden} units, "
                f"{c.train.steps:,} steps (train.steps) of {c.data.batch} streams x {c.data.window} characters, "
                f"{c.optim.name.capitalize()} at {c.optim.lr:g}; with --time-budget and no model size given, "
                f"chosen for the budget instead (model.size auto). A preset, a file, flags or --set change them; "
                f"--dry-run shows every key and where its value comes from.")


def _preset_help():
    from .. import presets

    return (f"A preset ({', '.join(presets.names())}: the files of configs/) or a YAML file of yours "
            f"[default: the defaults below].")


@click.command(cls=_TrainCommand)
@click.argument("corpus", nargs=-1)
@click.option("--config", "config_path", metavar="NAME|FILE", help=_preset_help())
@click.option("--out", metavar="DIR",
              help="Run directory for checkpoints and metrics; one that holds a run is refused unless --force "
                   "[default: runs/<corpus name>, or runs/<corpus name>-2, -3 ... when that holds a run].")
@click.option("--resume", metavar="DIR", help="Continue the run in DIR from its latest.npz.")
@click.option("--init-from", metavar="RUN_DIR|CKPT",
              help="Fine-tune: start from this model's weights, cell, layers and width (model.init_from); its "
                   "characters and the corpus's make the vocabulary; the optimizer and schedule start afresh.")
@click.option("--steps", type=click.IntRange(min=1), help="Total optimizer steps of the run (train.steps).")
@click.option("--time-budget", metavar="DURATION",
              help="Stop cleanly, saving, after training this long, e.g. 90s, 10m, 1h (reading the text and sizing "
                   "the model come before, the last validation and save after: seconds). Unless a model size is given (by a "
                   "preset or file that sets it, or --set model.hidden/layers), the model, dropout and schedule "
                   "are chosen for the budget, the text and this machine's measured speed, and said (model.size).")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed (train.seed).")
@click.option("--val", "val_path", metavar="FILE", help="Validate on FILE instead of the end of the corpus.")
@click.option("--encoding", help="Text encoding of the corpus (data.encoding) [default: utf-8].")
@click.option("--errors", type=click.Choice(["strict", "replace"]),
              help="Invalid bytes: stop, or replace by U+FFFD (data.errors) [default: strict].")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override any config key, e.g. --set optim.lr=3e-3 (repeatable; applied last).")
@click.option("--force", is_flag=True, help="Start over in an --out that already holds a run, deleting it.")
@click.option("--engine", type=click.Choice(["numpy", "torch"]),
              help="What computes the steps (train.engine): NumPy, or PyTorch (pip install torch; "
                   "under torchrun, every process a share of the batch) [default: numpy].")
@click.option("--device", type=click.Choice(["cpu", "cuda", "mps"]),
              help="Where the torch engine trains (train.device) [default: cpu].")
@click.option("--dry-run", is_flag=True,
              help="Print the configuration (each value with its origin), the corpus and model sizes and the "
                   "time per 1,000 steps (a few steps timed), and exit; nothing is written.")
@click.option("--quiet", "-q", is_flag=True,
              help="No progress bar or messages: errors only, and where a run stopped by Ctrl-C saved.")
def train(corpus, config_path, out, resume, init_from, steps, time_budget, seed, val_path, encoding, errors, overrides,
          force, engine, device, dry_run, quiet):
    """Train a model on CORPUS: text files, directories of text files, or - for stdin.
    With no CORPUS, train the rooms memory demo: stories with new names, the rooms-names-quick preset.

    The hidden state is carried from window to window (truncated backpropagation through time).
    Checkpoints go to the run directory: latest.npz every train.save_every steps and at the end,
    best.npz at the lowest validation loss (the validation where a run stops counts too). Ctrl-C
    finishes the step, saves latest.npz, validates and exits; a second says what a third would
    abort (the save, or that last validation); --resume continues bit for bit where it stopped.
    """
    import signal

    from .. import api
    from ..errors import Interrupted

    if resume and config_path:
        raise click.UsageError("--config cannot be combined with --resume: the run keeps its config")
    if resume and init_from:
        raise click.UsageError("--init-from starts a new run from a model's weights; --resume continues a run: "
                               "give one of them")
    if resume and out and out != resume:
        raise click.UsageError("--out cannot differ from --resume: a resumed run stays in its directory")
    trainer = api.trainer(corpus, config_path, out=out, resume=resume, init_from=init_from, steps=steps,
                          time_budget=time_budget, seed=seed, settings=overrides, val=val_path, force=force,
                          quiet=quiet, flags={"data.encoding": encoding, "data.errors": errors,
                                              "train.engine": engine, "train.device": device})
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


command = train  # what cli/__init__.py registers

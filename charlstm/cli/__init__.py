"""The `charlstm` command line: one module per command, each of which parses its options and calls the
library (the Python API, api.py, for models and training), which returns values or raises CharlstmError
with a message written for users; `main` prints such errors on one line and exits 1. Data goes to
stdout; progress, warnings and errors to stderr.

    train.py    charlstm train: options to an api.trainer, which it runs
    sample.py   charlstm sample: prompts (arguments, stdin or a prompt loop) to completions, streamed
    eval.py     charlstm eval: cross-entropy of files, cloze accuracy; the scoring progress bar
    inspect.py  charlstm inspect: gates and memory, character by character, in the terminal or HTML
    plot.py     charlstm plot: a run's loss curves
    corpus.py   charlstm corpus rooms | pysource: corpora charlstm writes itself
    shared.py   option types, -c's model, colour, and every error mapped to one line
"""

import click

from .. import __version__
from . import corpus, inspect, plot, sample, shared, train
from . import eval as eval_  # the module of `charlstm eval`


@click.group(cls=shared.Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="charlstm")
def cli():
    """Train, sample, score and inspect character-level LSTM language models, in pure NumPy."""


for _module in (train, sample, eval_, inspect, plot, corpus):
    cli.add_command(_module.command)


def main():
    """The console script `charlstm` (pyproject.toml) and `python -m charlstm`."""
    shared.run(cli)

"""The `charlstm` command line: parses options, loads configuration and calls the library.

Library functions raise CharlstmError with messages written for users; `main` prints them on one line and
exits 1. Data goes to stdout, progress and messages to stderr.
"""

import sys

import click

from . import __version__
from .errors import CharlstmError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="charlstm")
def cli():
    """Train, sample and evaluate character-level LSTM language models, in pure NumPy."""


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

"""What the commands share: option types and help, loading the checkpoint of -c, colour, and the way out
(a CharlstmError or a usage error as one line and an exit status, a closed pipe as a quiet exit, stdout
that cannot be written as the user's trouble in one line, a bug
as one line that says how to see the traceback).
"""

import math
import os
import shlex
import sys

import click

CHECKPOINT_HELP = ("Checkpoint file, or a run directory (the one of its best.npz and latest.npz with the lower "
                   "validation loss; a note says which when they differ) [default: the shipped rooms model].")
UNKNOWN = click.Choice(["error", "skip"])
UNKNOWN_HELP = "Characters missing from the model's vocabulary: stop, or drop them with a warning."
ERRORS = click.Choice(["strict", "replace"])
ERRORS_HELP = "Bytes invalid in the encoding: stop, or replace each by U+FFFD."
COLOUR = click.Choice(["auto", "always", "never"])


class FiniteFloat(click.FloatRange):
    """A float option that refuses NaN and infinity, which click's FloatRange lets through (NaN compares
    false with every bound): "'nan' is not a finite number", as click reports any bad value."""

    def __init__(self, *args, zero_hint=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.zero_hint = zero_hint  # said when 0 is refused: what the user who gave 0 may have wanted

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        if number == 0 and self.zero_hint and self.min == 0 and self.min_open:
            self.fail(f"0 is not in the range {self._describe_range()}; {self.zero_hint}.", param, ctx)
        return super().convert(number, param, ctx)


class Group(click.Group):
    """A click group that treats a reader gone away (`| head`) as the end of the output, not an error."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # caught here: click itself would turn it into exit status 1
            quiet_broken_pipe()


def load_model(path, quiet=False):
    """The model of -c (api.load): a file, or the better of a run directory's two (a note says which when
    they differ, unless quiet); the shipped rooms model without -c."""
    from .. import api

    return api.load(path, None if quiet else warn)


def refuse_run_directories(arguments, what, command):
    """A usage error for an argument that names a run directory (a latest.npz or best.npz in it): a
    checkpoint given without -c, which would otherwise be scored as text or completed as a prompt by the
    shipped model."""
    for argument in arguments:
        from ..rundir import holds_run

        try:
            found = argument != "-" and holds_run(argument)
        except (OSError, ValueError):  # not a path this system can look up (too long, a NUL in it)
            found = False
        if found:
            raise click.UsageError(f"{argument} is a run directory, not {what}: give it with -c, as in "
                                   f"charlstm {command} -c {shlex.quote(argument)} ...")


def warn(message):
    click.echo(message, err=True)


def use_colour(choice):
    """--color auto: colours on a terminal unless NO_COLOR is set."""
    if choice == "auto":
        return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    return choice == "always"


def quiet_broken_pipe():
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


class StdoutError(Exception):
    """stdout cannot take what a command writes (a full disk, a file size limit, a closed descriptor): the
    user's environment, said in one line, not a bug."""


class _GuardedStdout:
    """sys.stdout while a command runs: a failed write or flush becomes a StdoutError naming stdout, and a
    stdout that was closed when charlstm started (`>&-`, where Python sets sys.stdout to None, so output
    would vanish with exit status 0) fails at the first write. A closed pipe (BrokenPipeError) passes
    through: it is the quiet end of `| head`."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        return self._call("write", text)

    def flush(self):
        return None if self._stream is None else self._call("flush")  # nothing written, nothing to flush

    def isatty(self):
        return self._stream is not None and self._stream.isatty()

    def _call(self, name, *args):
        if self._stream is None:
            raise StdoutError("it is closed")
        try:
            return getattr(self._stream, name)(*args)
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as e:  # ValueError: "I/O operation on closed file"
            raise StdoutError(getattr(e, "strerror", None) or str(e)) from None

    def __getattr__(self, name):  # encoding, fileno, buffer ...: the stream's own
        if self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def run(group):
    """Run the click group on sys.argv, every way out mapped to a line on stderr and an exit status: 1 for
    a CharlstmError, click's own for a usage error, 130 for Ctrl-C, 0 for a closed pipe, 70 for a bug."""
    from ..errors import CharlstmError

    original = sys.stdout
    sys.stdout = _GuardedStdout(original)
    try:
        group.main(standalone_mode=False)
        sys.stdout.flush()  # here, not at exit, where Python would only print "Exception ignored"
    except StdoutError as e:
        if original is not None:
            _detach_stdout()  # what stays buffered would fail again when Python flushes at exit
        click.echo(f"error: cannot write to stdout: {e}", err=True)
        sys.exit(1)
    except BrokenPipeError:
        quiet_broken_pipe()
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
    finally:
        sys.stdout = original

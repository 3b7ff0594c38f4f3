"""`charlstm inspect`: what a model expects, and what its gates and memory do, character by character
(inspection.py), in the terminal's colours or as a web page.
"""

import os
import shlex
import sys

import click

from .shared import CHECKPOINT_HELP, COLOUR, ERRORS, ERRORS_HELP, UNKNOWN, UNKNOWN_HELP, load_model, use_colour, warn


@click.command()
@click.argument("texts", nargs=-1, metavar="[TEXT]")
@click.option("-c", "--checkpoint", "ckpt_path", metavar="CKPT", help=CHECKPOINT_HELP)
@click.option("--show", multiple=True, metavar="QUANTITY",
              help="surprisal, forget, input, output (GRU: reset, update), copy (a model with a pointer), "
                   "cell:LAYER:UNIT or hidden:LAYER:UNIT; repeatable; replaces the default, surprisal.")
@click.option("--top", default=0, metavar="N", type=click.IntRange(min=0),
              help="Also show the N units whose memory varies most over the text (below the surprisal or "
                   "--show rows).")
@click.option("--at", "word", metavar="WORD",
              help="With --top (or --html's units): rank the units by how far their memory moves while WORD "
                   "(its first occurrence) is read: which units take a name in.")
@click.option("--html", "html_path", metavar="FILE",
              help="Write a self-contained web page instead [default rows: surprisal, every gate, --top 8].")
@click.option("--color", "color", type=COLOUR, default="auto", show_default=True,
              help="auto: colours on a terminal unless NO_COLOR is set.")
@click.option("--width", type=click.IntRange(min=10), help="Wrap at this many characters [default: the terminal's].")
@click.option("--unknown", type=UNKNOWN, default="error", show_default=True, help=UNKNOWN_HELP)
@click.option("--encoding", default="utf-8", show_default=True, help="Text encoding of stdin.")
@click.option("--errors", type=ERRORS, default="strict", show_default=True, help=ERRORS_HELP)
def inspect(texts, ckpt_path, show, top, word, html_path, color, width, unknown, encoding, errors):
    """Show, character by character, what the model expects and what its gates and memory do.

    \b
    TEXT is the text to run (from the zero state, after a newline, as a prompt; a
    model trained on lines reads each line so); - or no TEXT reads stdin (its last
    newline left out, as in $(...)).
        charlstm inspect -c runs/rooms 'Mady walks in to the room, ...' --top 4
        charlstm inspect -c runs/shk --show forget --show cell:0:17 'To be, or'
        charlstm inspect -c runs/rooms --html gates.html 'Mady and Monica ...'
        charlstm inspect -c runs/names --top 3 --at Bob 'Alice ..., Bob also ...'
    """
    from .. import inspection
    from ..reading import check_text, decode

    if len(texts) > 1:  # the shell split an unquoted text into words
        raise click.UsageError(f"inspect reads one TEXT, not {len(texts)}: quote it, as in "
                               f"charlstm inspect {shlex.quote(' '.join(texts))}")
    text = texts[0] if texts else None
    if word is not None and not top and not html_path:  # checked before the model is loaded and run
        raise click.UsageError("--at ranks the units --top shows: give --top N too")

    ckpt = load_model(ckpt_path).checkpoint
    if text is None or text == "-":
        if text is None and sys.stdin.isatty():
            raise click.UsageError("give a TEXT to inspect, or - to read it from stdin")
        text = decode(sys.stdin.buffer.read(), "stdin", encoding, errors)
        text = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text  # echo's newline
    elif os.path.isfile(text):  # a user who meant the file (eval and train take files)
        warn(f"note: inspecting the text {text!r} itself; to inspect that file: charlstm inspect - < {text}")
    check_text(text, "the text to inspect")
    text, traced = inspection.run(ckpt, text, unknown, warn)
    at = None if word is None else (text, word)
    if html_path:
        rows = inspection.quantities(traced, ckpt.spec, list(show) or ["surprisal", *traced["gates"]], top or 8, at)
        shown = ckpt_path or "the shipped rooms model"  # as the user named it: a page may be shared
        inspection.write_html(html_path, text, rows, title=f"charlstm inspect: {shown}")
        click.echo(f"wrote {html_path} ({len(rows)} quantities; open it in a browser)", err=True)
        return
    rows = inspection.quantities(traced, ckpt.spec, list(show) or ["surprisal"], top, at)
    use = use_colour(color)
    truecolor = os.environ.get("COLORTERM", "").lower() in ("truecolor", "24bit")
    mode = "none" if not use else "truecolor" if truecolor else "ansi256"
    for line in inspection.render_terminal(text, rows, mode, width):
        click.echo(line, color=use)  # click would strip the colours when stdout is not a terminal


command = inspect  # what cli/__init__.py registers

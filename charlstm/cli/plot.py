"""`charlstm plot`: a run's training and validation loss (and cloze accuracy) from its metrics.jsonl, in the
terminal or as a PNG (plot.py).
"""

import click

from .shared import COLOUR, use_colour


@click.command()
@click.argument("run_dir")
@click.option("--x", "x_axis", type=click.Choice(["step", "time"]), default="step", show_default=True,
              help="Horizontal axis: optimizer steps or seconds of training.")
@click.option("--png", "png_path", metavar="FILE",
              help="Write a PNG instead (needs matplotlib: pip install matplotlib).")
@click.option("--width", default=72, show_default=True, type=click.IntRange(min=20),
              help="Characters across the terminal plot (not --png).")
@click.option("--height", default=16, show_default=True, type=click.IntRange(min=4),
              help="Lines of the terminal plot (not --png).")
@click.option("--color", "color", type=COLOUR, default="auto", show_default=True)
def plot(run_dir, x_axis, png_path, width, height, color):
    """Draw a run's training and validation loss (and cloze accuracy) from its metrics.jsonl."""
    from .. import plot as plot_mod

    if png_path:
        plot_mod.png(run_dir, png_path, x_axis)
        click.echo(f"wrote {png_path}", err=True)
        return
    use = use_colour(color)
    for line in plot_mod.terminal(run_dir, x_axis, width, height, use):
        click.echo(line, color=use)


command = plot  # what cli/__init__.py registers

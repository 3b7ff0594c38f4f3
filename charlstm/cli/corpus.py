"""`charlstm corpus`: corpora charlstm writes itself, to stdout: the rooms stories (corpus.py, openworld.py)
and Python source code.
"""

import sys

import click

from .shared import FiniteFloat


@click.group()
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
    Mady walks in to the room, Monica also walks in to the room. Mady said
      hi to Monica.
    Mady and Monica walk in to the room together, later Richard walks in to
      the room. Mady said hi to Richard.
    (one story a line)

    \b
    charlstm corpus rooms --open > open.txt   # thousands of names
    charlstm corpus rooms --open --split test --names unseen --cloze \\
      > unseen-names.tsv
    charlstm corpus rooms --open --names fresh --stories 100000 > fresh.txt
    charlstm corpus rooms --open --names twelve --closed-share 0.3 \\
      --stories 40000                          # data/rooms-train.txt
    """
    from .. import corpus as corpus_mod

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
    from .. import corpus as corpus_mod

    text, version = corpus_mod.pysource(max_chars)
    sys.stdout.write(text)
    click.echo(f"wrote {len(text):,} characters of the Python {version} standard library", err=True)


command = corpus  # what cli/__init__.py registers

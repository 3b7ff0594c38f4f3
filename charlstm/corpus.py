"""Corpora charlstm can write itself: the rooms stories (the memory task) and Python source code.

Rooms stories, one per line, in the article's words. Form 1:
    "{A} walks in to the room, {B} also walks in to the room. {S} said hi to {X}."
where the speaker S is A or B and X is the other one; form 2:
    "{A} and {B} walk in to the room together, later {C} walks in to the room. {S} said hi to {C}."
where S is A or B and the greeting goes to the newcomer C. Between the last entrance and the greeting
stand neutral filler sentences that name no one, so that the model must hold the names across a gap.

Randomness comes from Python's random.Random (Mersenne Twister), whose choice, sample and randint have
drawn the same values from the same seed since Python 3.2, so the same seed writes the same bytes; a
test regenerates the shipped files byte for byte and would notice a change. Train and test splits use
different streams of the same seed.
"""

import os
import random
import sys
from dataclasses import dataclass

from .cast import CAST
from .reading import decode, read_bytes
from .errors import DataError

FILLERS = (
    "The lights are dim.", "It is raining outside.", "A clock ticks on the wall.", "The window is open.",
    "Music plays softly.", "The coffee is still warm.", "Somewhere a phone rings.", "The floor creaks.",
    "A car passes in the street.", "The air smells of bread.", "The curtains move a little.",
    "It is almost noon.", "A dog barks far away.", "The radio is on.", "Rain taps on the glass.",
    "The kettle starts to boil.", "Nobody speaks for a while.", "The sun comes out.",
)
SPLITS = {"train": 0, "test": 1}
BLANK = "___"


@dataclass
class Story:
    text: str  # the whole story
    prompt: str  # the story with the greeted name replaced by ___
    answer: str  # the greeted name
    gap: int  # characters of filler between the last entrance and the greeting
    form: int  # 1 or 2


def rooms(n, seed=0, cast=CAST, max_gap=120, split="train"):
    """n stories; see the module docstring. max_gap bounds the filler characters (0: none)."""
    if len(cast) < 3:
        raise DataError("the rooms stories need a cast of at least three names")
    rng = random.Random(seed * len(SPLITS) + SPLITS[split])
    return [_story(rng, cast, _closed_filler, max_gap) for _ in range(n)]


def open_rooms(n, seed=0, names="seen", fillers="seen", max_gap=120, split="train", closed_share=0.0):
    """n stories of the open world (openworld.py): names from one of its pools (openworld.POOLS), the
    "twelve" of the closed world, or "fresh": three names drawn anew for every story; fillers from its "seen" or "unseen" pool. closed_share: the share of
    stories told with the twelve names and the eighteen fillers."""
    from . import openworld

    cast = CAST if names == "twelve" else None if names == "fresh" else openworld.names(names)
    # seed s's open stream is the closed world's stream of seed s + 500: distinct for the seeds in use
    rng = random.Random(seed * len(SPLITS) + SPLITS[split] + 1000)
    stories = []
    for _ in range(n):
        if rng.random() < closed_share:
            stories.append(_story(rng, CAST, _closed_filler, max_gap))
        else:
            story_cast = cast or _fresh_cast(rng)
            stories.append(_story(rng, story_cast, lambda r: openworld.filler(r, fillers), max_gap))
    return stories


def _fresh_cast(rng):
    """Three distinct names drawn for one story (openworld.fresh_name)."""
    from . import openworld

    cast = []
    while len(cast) < 3:
        name = openworld.fresh_name(rng)
        if name not in cast:
            cast.append(name)
    return cast


def _closed_filler(rng):
    return rng.choice(FILLERS)


def _story(rng, cast, filler, max_gap):
    form = rng.choice((1, 2))
    if form == 1:
        a, b = rng.sample(cast, 2)
        setup = f"{a} walks in to the room, {b} also walks in to the room."
        speaker, greeted = (a, b) if rng.random() < 0.5 else (b, a)
    else:
        a, b, c = rng.sample(cast, 3)
        setup = f"{a} and {b} walk in to the room together, later {c} walks in to the room."
        speaker, greeted = rng.choice((a, b)), c
    target = rng.randint(0, max_gap) if max_gap > 0 else 0  # the gap spreads evenly up to max_gap
    fillers = []
    gap = 0
    while True:
        sentence = filler(rng)
        if gap + len(sentence) + 1 > target:
            break
        fillers.append(sentence)
        gap += len(sentence) + 1
    middle = "".join(" " + f for f in fillers)
    greeting = f" {speaker} said hi to "
    text = f"{setup}{middle}{greeting}{greeted}."
    prompt = f"{setup}{middle}{greeting}{BLANK}."
    return Story(text, prompt, greeted, gap, form)


def story_gap(prompt):
    """Filler characters in a rooms cloze prompt: from the end of the last entrance to the greeting."""
    end = prompt.rfind("walks in to the room.") + len("walks in to the room.")
    start = prompt.rfind(" said hi to ")
    start = prompt.rfind(". ", 0, start) + 1 if start > 0 else start
    return max(0, start - end)


def read_cast(path):
    """Names from a file, one per line; blank lines skipped."""
    names = [line.strip() for line in decode(read_bytes(path), path).splitlines() if line.strip()]
    if len(set(names)) != len(names):
        raise DataError(f"{path}: the cast repeats a name")
    if len(names) < 3:
        raise DataError(f"{path}: the rooms stories need a cast of at least three names")
    return tuple(names)


def pysource(limit=5_000_000, root=None):
    """The running interpreter's standard library .py files (sorted by path, test suites and
    site-packages left out), concatenated up to `limit` characters: real code nobody here wrote."""
    import sysconfig

    root = root or sysconfig.get_paths()["stdlib"]
    paths = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "test", "tests", "idle_test", "__pycache__")
                         and not d.startswith("."))
        paths += [os.path.join(directory, f) for f in files if f.endswith(".py")]
    parts, total = [], 0
    for path in sorted(paths, key=lambda p: os.path.relpath(p, root)):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        text = text if text.endswith("\n") else text + "\n"
        if total + len(text) > limit:  # the file's whole lines that still fit, then stop
            parts.append(text[: text.rfind("\n", 0, limit - total) + 1])
            break
        parts.append(text)
        total += len(text)
    return "".join(parts), sys.version.split()[0]

"""The open rooms world: thousands of names and filler sentences, split so that a test can hold what
training never showed.

Names are built from syllables (an initial of every letter A-Z, then consonant-vowel syllables and
sometimes a closing consonant): 3 to 8 letters that read like given names (Sacha, Quanexu, Weku). The
pool is drawn once, from a fixed seed, and cut in two: the "seen" names, which training stories use,
and the "unseen" names, kept for tests. The cut is by a hash of the name, so each pool keeps its names
whatever its size; both pools have names starting with every capital letter.

Fresh names (`--names fresh`) are drawn anew for every story from a space far larger than any run:
syllables as above, up to 12 letters, or letters drawn one by one (doubled letters and clusters
included). A name the unseen pool could hold (by its hash) or a real given name (givennames.py) is
never drawn, so both test sets stay unseen; with no name coming back often, copying is the only way to
predict one (docs/memory.md).

Filler sentences come from templates filled from word lists ("The {noun} is {adjective}."). The seen
and unseen fillers share no template and no content word, so a test story with unseen fillers holds
sentences, and words, that no training story has. Neither pool holds a name, and no filler word is
capitalised but the sentence's first. In the seen fillers half of the template's fields are filled with
a made-up word ("The lamp drifts vorbel."): with a hundred real words only, a model learns to step over
those words, and a sentence of other words breaks its memory of the names (docs/memory.md); made-up
words teach it to step over any lower-case word. A third of the seen fillers also open with a made-up
capitalised word ("Ivaro, the lamp is dim.", "Ivaro lamp is dim."): when every filler opened with one of
a few words, a filler opening with another capital ("Every hour, ...") was read as a name (Every as
Emily). Made-up words are never a word of the unseen fillers, nor a name of either pool or of the closed
world's twelve.
"""

import random
import string
import zlib
from functools import lru_cache

POOL_SEED = 27  # the seed of the name pool; changing it changes every open corpus
POOL_SIZE = 12000  # names drawn; about 1 in 5 are unseen
UNSEEN_ONE_IN = 5  # a name is unseen when its hash is 0 modulo this: about one in five

VOWELS = "aeiou"
# Syllable onsets after the first: common consonants often, rare ones (q, x, z) sometimes.
ONSETS = ["b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
          "z", "qu", "x", "br", "dr", "st", "th", "sh", "ch", "l", "n", "r", "s", "t", "m", "k", "d"]
CODAS = ["n", "r", "l", "s", "m", "th", "n", "r", "l", "x", "z", "q"]
VOWEL_PAIRS = ["ai", "ea", "ie", "io", "ia", "ou", "ei", "ya"]


def _initial(rng):
    """A name's first syllable: an initial letter, uniformly A-Z, made pronounceable."""
    letter = rng.choice(string.ascii_uppercase)
    if letter in "AEIOU":
        return letter + rng.choice(["", "l", "n", "r", "m", "s", "d", "v"])
    if letter == "Q":
        return "Qu" + rng.choice(VOWELS[:4])
    if letter == "Y":
        return "Y" + rng.choice("aeou")
    return letter + (rng.choice("hlr") if rng.random() < 0.15 and letter in "BCFGKPST" else "") + rng.choice(VOWELS)


def _name(rng):
    name = _initial(rng)
    for _ in range(rng.choice((1, 1, 2, 2, 2, 3))):
        name += rng.choice(ONSETS) + (rng.choice(VOWEL_PAIRS) if rng.random() < 0.1 else rng.choice(VOWELS))
        if len(name) >= 6:
            break
    if rng.random() < 0.3:
        name += rng.choice(CODAS)
    return name


LETTERS = string.ascii_lowercase
COMMON = "aeiouaeiounrstlmdkbhgy"  # letters drawn more often, so that many names can be read aloud


def fresh_name(rng):
    """A name for one story of the fresh-names world: never an unseen-pool name (by its hash), a given
    name of givennames.py, or one of the twelve."""
    while True:
        if rng.random() < 0.5:
            name = _initial(rng)
            for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
                name += rng.choice(ONSETS) + (rng.choice(VOWEL_PAIRS) if rng.random() < 0.15 else rng.choice(VOWELS))
            if rng.random() < 0.3:
                name += rng.choice(CODAS)
        else:  # letters one by one: any spelling, doubled letters too
            name = rng.choice(string.ascii_uppercase)
            for _ in range(rng.randint(1, 10)):
                name += name[-1].lower() if rng.random() < 0.08 else rng.choice(COMMON if rng.random() < 0.6 else LETTERS)
        if 2 <= len(name) <= 12 and not _unseen(name) and name not in _forbidden():
            return name


@lru_cache(maxsize=None)
def _forbidden():
    from .cast import CAST
    from .givennames import GIVEN_NAMES

    return frozenset({*GIVEN_NAMES, *CAST})


def _unseen(name):
    return zlib.crc32(name.encode("ascii")) % UNSEEN_ONE_IN == 0


POOLS = ("seen", "unseen", "unseen-final", "real", "real-final")


@lru_cache(maxsize=None)
def names(pool):
    """The sorted names of a pool; no name is a word of a filler.

    seen, unseen: the syllable names of POOL_SEED, cut by their hash. unseen-final: more names of the
    unseen kind (by their hash), from another seed and none in "unseen": a test set kept for final figures.
    real, real-final: the given names of givennames.py, cut by a hash into two thirds and one third, the
    third kept for final figures (less the two the unseen pool has). Fresh names (fresh_name) are never a
    name of the unseen or real pools.
    """
    if pool not in POOLS:
        raise ValueError(f"no name pool {pool!r}; pools: {', '.join(POOLS)}")
    if pool.startswith("real"):
        from .givennames import GIVEN_NAMES

        generated = set(names("unseen"))  # a given name the syllables made too (Una) stays with them
        return tuple(n for n in GIVEN_NAMES if (zlib.crc32(n.encode("ascii")) % 3 == 0) == (pool == "real-final")
                     and n not in generated)
    rng = random.Random(POOL_SEED if pool != "unseen-final" else POOL_SEED + 1)
    words = _filler_words("seen", "unseen")
    drawn = set()
    for _ in range(POOL_SIZE):
        name = _name(rng)
        if 3 <= len(name) <= 8 and name.lower() not in words:
            drawn.add(name)
    if pool == "unseen-final":
        return tuple(sorted(n for n in drawn if _unseen(n) and n not in names("unseen")))
    return tuple(sorted(n for n in drawn if _unseen(n) == (pool == "unseen")))


# Filler templates and their words, one set for each pool; no content word appears in both.
FILLER_WORLDS = {
    "seen": {
        "templates": [
            "The {thing} is {state}.", "A {thing} {sound} somewhere.", "The {thing} {moves} {where}.",
            "Outside, the {weather}.", "It is {time}.", "Someone left the {thing} {where}.",
            "A {animal} {moves} {where}.", "The {thing} looks {state} today.",
            # commas inside a sentence, so that ", " is not taken for the start of an entrance
            "Now and then, the {thing} {sound}.", "In the {area}, a {animal} {moves}.",
            "For a while, the {thing} is {state}.", "Far off, a {animal} {sound}.",
            "Slowly, the {thing} {moves} {where}.",
        ],
        "area": ["kitchen", "hallway", "garden", "bedroom", "dining room", "library", "office", "nursery"],
        "thing": ["lamp", "clock", "door", "window", "kettle", "radio", "table", "curtain", "kitchen tap",
                  "ceiling fan", "bookshelf", "piano", "mirror", "candle", "rug", "teapot", "fridge",
                  "stairway", "garden gate", "mailbox", "painting", "vase", "doorbell", "computer"],
        "state": ["dim", "warm", "open", "dusty", "new", "broken", "bright", "quiet", "shiny", "crooked",
                  "empty", "clean", "wet", "old", "loud", "sticky"],
        "sound": ["rings", "ticks", "creaks", "buzzes", "rattles", "whistles", "beeps", "clicks"],
        "moves": ["rolls", "slides", "drifts", "wobbles", "tips over", "shakes", "spins"],
        "where": ["near the door", "by the window", "on the table", "across the floor",
                  "under the stairs", "in the hallway", "along the wall", "onto the rug"],
        "weather": ["rain keeps falling", "wind blows hard", "snow is melting", "fog rolls in",
                    "sun is setting", "sky turns grey", "thunder rumbles", "air is still"],
        "time": ["almost noon", "late in the evening", "early morning", "past midnight", "a weekday",
                 "a cold day", "nearly dinner time", "a quiet afternoon"],
        "animal": ["dog", "bird", "mouse", "fly", "moth", "goldfish", "parrot", "rabbit"],
    },
    "unseen": {
        "templates": [
            "A {creature} {rests} on the {furniture}.", "The {appliance} {hums} in the {spot}.",
            "Every {period}, the {appliance} {hums}.", "Two {creatures} {rest} beside the {furniture}.",
            "The {spot} is full of the scent of {food}.", "Nothing moves in the {spot}.",
            "Through the {opening}, {light} spills in.", "Somebody is baking {food} in the {spot}.",
        ],
        "creature": ["cat", "kitten", "puppy", "hamster", "lizard", "beetle", "spider", "squirrel",
                     "frog", "duck", "pigeon", "turtle"],
        "creatures": ["cats", "kittens", "puppies", "hamsters", "lizards", "beetles", "spiders",
                      "squirrels", "frogs", "ducks", "pigeons", "turtles"],
        "rests": ["sleeps", "naps", "sits", "waits", "yawns", "curls up", "stretches", "dozes"],
        "rest": ["sleep", "nap", "sit", "wait", "yawn", "curl up", "stretch", "doze"],
        "furniture": ["chair", "sofa", "bench", "desk", "stool", "cushion", "armchair", "cupboard",
                      "bed", "carpet", "blanket", "shelf"],
        "appliance": ["heater", "washing machine", "freezer", "printer", "vacuum", "toaster",
                      "dishwasher", "boiler", "microwave", "humidifier"],
        "hums": ["hums", "whirs", "groans", "sighs", "purrs", "thumps", "gurgles", "drones"],
        "spot": ["corner", "basement", "attic", "pantry", "cellar", "porch", "study", "bathroom",
                 "loft", "garage"],
        "period": ["minute", "hour", "night", "season", "winter", "week"],
        "food": ["cinnamon", "soup", "pancakes", "toast", "onions", "lemons", "apples", "garlic",
                 "pepper", "cookies"],
        "opening": ["skylight", "shutters", "blinds", "keyhole", "porthole", "archway"],
        "light": ["moonlight", "sunshine", "lamplight", "a pale glow", "a yellow beam", "dawn"],
    },
}


def _filler_words(*pools):
    """Every word of the pools' templates and word lists, lower-cased (a template's field names too)."""
    return {w.strip(".,{}").lower() for pool in pools for values in FILLER_WORLDS[pool].values()
            for text in values for w in text.split()}


MADE_UP = 0.5  # the share of a seen filler's fields filled with a made-up word
MADE_UP_OPENER = 0.33  # the share of seen fillers that open with a made-up capitalised word


def filler(rng, pool):
    """One filler sentence of a pool, "seen" or "unseen"."""
    world = FILLER_WORLDS[pool]
    template = rng.choice(world["templates"])
    sentence = string.Formatter().vformat(template, (), _Draw(rng, world, MADE_UP if pool == "seen" else 0.0))
    if pool == "seen" and rng.random() < MADE_UP_OPENER:
        opener = made_up_word(rng).capitalize()
        while opener in _test_names():  # a capitalised word no test story may hold as a name
            opener = made_up_word(rng).capitalize()
        first, rest = sentence.split(" ", 1)
        sentence = f"{opener}, {first.lower()} {rest}" if rng.random() < 0.5 else f"{opener} {rest}"
    return sentence


class _Draw(dict):
    """A template's fields, each drawn when the template asks for it: from its word list, or (with
    probability made_up) a made-up word."""

    def __init__(self, rng, world, made_up):
        super().__init__()
        self.rng, self.world, self.made_up = rng, world, made_up

    def __missing__(self, key):
        if self.made_up and self.rng.random() < self.made_up:
            return made_up_word(self.rng)
        return self.rng.choice(self.world[key])


def made_up_word(rng):
    """A lower-case word of 2 to 9 letters built from syllables, never a word of the unseen fillers."""
    while True:
        word = rng.choice(["", "", "a", "e", "o", "i", "u"])
        for _ in range(rng.choice((1, 1, 2, 2, 3))):
            word += rng.choice(ONSETS) + rng.choice(VOWELS)
        if rng.random() < 0.4:
            word += rng.choice(CODAS)
        if 2 <= len(word) <= 9 and word not in _taken():
            return word


@lru_cache(maxsize=None)
def _test_names():
    """The names of the test pools added after the first open corpora (made-up words already avoid the
    unseen pool's)."""
    from .givennames import GIVEN_NAMES

    return frozenset({*names("unseen-final"), *GIVEN_NAMES})


@lru_cache(maxsize=None)
def _taken():
    """What a made-up word must not be: a word of the unseen fillers, or a name (lower-cased)."""
    from .cast import CAST

    people = [*names("seen"), *names("unseen"), *CAST]
    return frozenset(_filler_words("unseen") | {n.lower() for n in people})

"""The twelve names of the closed rooms world (the article's cast): what the shipped rooms stories are
told with (corpus.py), and what the open world's generated and held-out names must never be
(openworld.py). Apart, so that both read them without importing each other.
"""

CAST = ("Mady", "Monica", "Richard", "Rachel", "Ross", "Joey", "Chandler", "Phoebe", "Janice", "Gunther",
        "Emily", "Carol")

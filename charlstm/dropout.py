"""Training-time dropout: the rates, the masks' seed, and the one operation that applies a mask.

The masks of a step come from a generator seeded by (train.seed, step) (dropout_at), so a resumed run
draws the same masks as one that never stopped; evaluation and sampling use none. The model (model.py)
applies it between layers and before the decoder; the engines hand it down (parallel.py gives each
worker masks of its own with `extended`).
"""

from dataclasses import dataclass, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Dropout:
    """Training-time dropout with inverted scaling (kept values are divided by 1 - p), as PyTorch's:
    `layers` on the output of every layer but the last (nn.LSTM(dropout=p)), `output` on the last
    layer's output before the decoder. Its masks come from a generator made from `seed` (a step's seed
    fixes its masks, so a resumed run draws the same ones); evaluation and sampling use none."""

    layers: float = 0.0
    output: float = 0.0
    seed: Any = ()  # anything numpy.random.default_rng takes; a tuple of integers to be extended

    def generator(self):
        """A new generator of this dropout's masks."""
        return np.random.default_rng(self.seed)

    def extended(self, *more):
        """The same rates with the seed extended: masks of their own for part of a batch (parallel.py)."""
        return replace(self, seed=(*self.seed, *more))


def apply(a, p, rng):
    """(a ⊙ m, m) with m = Bernoulli(1 - p) / (1 - p), or (a, None) when p is 0."""
    if not p:
        return a, None
    m = (rng.random(a.shape, dtype=a.dtype) >= p).astype(a.dtype)
    m *= 1.0 / (1.0 - p)
    return a * m, m


def dropout_at(cfg, step):
    """Dropout for a step, its masks drawn from a generator seeded by (seed, step): the saved step alone
    restores the mask stream on resume. None without dropout."""
    m = cfg.model
    if not (m.dropout or m.decoder_dropout):
        return None
    return Dropout(m.dropout, m.decoder_dropout, (cfg.train.seed, step, 7))

"""Scoring text: cross-entropy with full context, and fill-in-the-blank accuracy.

The definition used everywhere (validation during training, `charlstm eval`), so that anyone can check it:
for a text x_0 .. x_{N-1}, the state starts at zero and is carried through the whole text, and the score
is the mean over t = 1 .. N-1 of -log p(x_t | x_0 .. x_{t-1}), in nats per character. Several texts run
as parallel streams; their scored characters are pooled.
"""

import math

import numpy as np

from . import model
from .workspace import Workspace


def score(params, streams, window=256, work=None):
    """Total negative log-likelihood (nats) and the number of characters scored, over the id arrays in
    `streams`, each from the zero state. Streams of different lengths are padded and masked."""
    streams = [s for s in streams if len(s) >= 2]
    if not streams:
        return 0.0, 0
    work = Workspace() if work is None else work
    spec = model.spec_of(params)
    B = len(streams)
    longest = max(len(s) for s in streams)
    padded = np.zeros((longest, B), np.intp)  # (N, B)
    mask = np.zeros((longest - 1, B), params["decoder.weight"].dtype)
    for b, s in enumerate(streams):
        padded[: len(s), b] = s
        mask[: len(s) - 1, b] = 1
    state = model.zero_state(spec, B, params["decoder.weight"].dtype)
    total = 0.0
    for start in range(0, longest - 1, window):
        stop = min(start + window, longest - 1)
        m = mask[start:stop]
        count = float(m.sum())
        loss, state, _ = model.forward(params, padded[start:stop], padded[start + 1 : stop + 1], state, work, m)
        total += loss * count
    return total, int(mask.sum())


def metrics(total_nll, count):
    """The figures `charlstm eval` reports, from a total in nats and the characters scored."""
    nats = total_nll / count if count else float("nan")
    return {"chars": count, "nats_per_char": nats, "bits_per_char": nats / math.log(2),
            "perplexity": math.exp(nats) if count else float("nan")}

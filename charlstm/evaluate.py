"""Scoring text: cross-entropy with full context, and fill-in-the-blank accuracy.

The definition used everywhere (validation during training, `charlstm eval`), so that anyone can check it:
for a text x_0 .. x_{N-1}, the state starts at zero and is carried through the whole text, and the score
is the mean over t = 1 .. N-1 of -log p(x_t | x_0 .. x_{t-1}), in nats per character. Several texts run
as parallel streams; their scored characters are pooled.
"""

import math

import numpy as np

from . import model
from .errors import DataError
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


def read_cloze(path):
    """PROMPT<TAB>ANSWER lines -> (prompts, answers). Blank lines are skipped; anything else malformed
    is a DataError naming the line."""
    from .data import decode, read_bytes

    text = decode(read_bytes(path), "stdin" if path == "-" else path)
    prompts, answers = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or "___" not in parts[0]:
            raise DataError(f"{path} line {n}: expected PROMPT<TAB>ANSWER with ___ in the prompt")
        prompts.append(parts[0])
        answers.append(parts[1].strip())
    if not prompts:
        raise DataError(f"{path} holds no cloze lines")
    return prompts, answers


def cloze(params, vocab, prompts, answers, unknown="error", warn=None):
    """Exact-match accuracy of greedy blank filling: (accuracy, n, the model's fills)."""
    from .sample import fill_blanks

    fills = fill_blanks(params, vocab, prompts, unknown=unknown, warn=warn)
    correct = sum(f == a for f, a in zip(fills, answers))
    return correct / len(prompts), len(prompts), fills

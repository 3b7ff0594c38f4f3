"""The held-out text as validation scores it: all of it, or a fixed sample spread over it.

Scoring every held-out character is exact, and cheap for a small corpus (Tiny Shakespeare holds out
55,769 characters). For a large one it is not: 5% of a 1 GB corpus is 50 million characters, minutes to
hours per validation on a CPU, spent again at every validation. So by default (train.val_max_chars
null) a held-out text longer than SAMPLE_CHARS is scored on a sample of that many characters, and a
number N > 0 asks for a sample of N; 0 scores everything, however long.

The sample is SAMPLE_PIECES pieces (fewer for a small N: each at least MIN_PIECE characters), one in
each of as many equal stretches of the held-out text, at a position drawn from a generator with a fixed
seed (SEED and the text's length): the whole text is represented, not only its first pages, and every
validation of a run, and every run on the same text, scores the same characters, so that best.npz
compares like with like. In stream mode a piece is a contiguous stream scored from the zero state (the
state warms up over its first characters, which costs a bias of a few thousandths of a nat per
character at 4,000 characters a piece: docs/scale.md measures it). A held-out text scored whole is cut
into data.val_streams streams, or fewer, so that each holds MIN_PIECE characters (one stream for a
shorter text): in 32 streams of 9 characters, 281 held-out characters scored 0.78 nats a character
where the whole text scores 0.26 (2026-12-06). In lines mode a piece is the whole
lines that start in it, each its own sequence as always.
"""

import numpy as np

from .data import release_pages, split_streams

SAMPLE_CHARS = 256_000  # held-out characters scored by default when there are more (docs/scale.md)
SAMPLE_PIECES = 64  # the pieces of a sample: one group of evaluate.score, 64 streams side by side
MIN_PIECE = 4_000  # characters: a shorter stream would be mostly the state's warm-up
SEED = 20261205  # of the sample's positions; fixed, so that the sample depends on the text alone


def budget(cfg, held_out):
    """The number of held-out characters a validation scores, of held_out (cfg.train.val_max_chars:
    None for the default, 0 for all of them, else at most that many)."""
    limit = cfg.train.val_max_chars
    if limit is None:
        limit = SAMPLE_CHARS
    return held_out if limit == 0 else min(limit, held_out)


def validation_streams(corpus, cfg):
    """Held-out text as the model is trained on it: contiguous streams, or one sequence per line; all
    of corpus.val, or the sample of it that budget() allows."""
    ids = corpus.val
    wanted = budget(cfg, len(ids))
    if cfg.data.mode != "lines":
        if wanted >= len(ids):  # no more streams than MIN_PIECE allows: 281 characters in 32 streams scored 3x worse
            return split_streams(ids, max(1, min(cfg.data.val_streams, len(ids) // MIN_PIECE)))
        count = max(1, min(SAMPLE_PIECES, wanted // MIN_PIECE))
        return _released([np.array(ids[a:b]) for a, b in pieces(len(ids), wanted, count)], ids)  # copies, small
    newline = corpus.vocab.index["\n"]
    if wanted >= len(ids):
        return line_streams(ids, newline, close_last=True)
    found = []
    for a, b in pieces(len(ids), wanted, SAMPLE_PIECES):
        found += line_streams(whole_lines(ids, a, b, newline), newline, close_last=True)
    return _released(found, ids)


def pieces(n, wanted, count):
    """[(start, stop), ...]: count pieces of wanted // count characters (the first ones one longer, so
    that they add up to wanted), one in each of count equal stretches of range(n), at seeded positions."""
    count = max(1, min(count, wanted))
    sizes = np.full(count, wanted // count)
    sizes[: wanted % count] += 1
    bounds = np.linspace(0, n, count + 1).astype(np.int64)
    rng = np.random.default_rng([SEED, n])
    starts = [int(a + rng.integers(max(b - a - size, 0) + 1)) for a, b, size in zip(bounds[:-1], bounds[1:], sizes)]
    return [(s, s + int(size)) for s, size in zip(starts, sizes)]


def whole_lines(ids, start, stop, newline):
    """The lines of ids that start in [start, stop): from the first line start at or after start to the
    end of the last of them (its newline excluded); at least one whole line when one starts there."""
    n = len(ids)
    if start > 0:
        after = _next(ids, start - 1, newline)  # a line starts after the newline at or after start - 1
        start = n if after is None else after + 1
    if start >= n:
        return ids[:0]
    end = _next(ids, max(stop - 1, start), newline)
    return ids[start : n if end is None else end]


def _next(ids, i, newline, step=1 << 16):
    """The index of the first newline at or after i, or None."""
    while i < len(ids):
        hits = np.flatnonzero(ids[i : i + step] == newline)
        if len(hits):
            return i + int(hits[0])
        i += step
    return None


def line_streams(ids, newline, close_last=False):
    """Each non-empty line of ids as its own sequence, as a model trained on lines reads it: a newline
    (read from the zero state), the line, and its newline where the text has one; close_last gives an
    unterminated last line one too (a held-out piece cut from a longer text)."""
    ends = np.flatnonzero(ids == newline)
    starts, stops = np.r_[-1, ends], np.r_[ends, len(ids)]
    streams = [np.concatenate([[newline], ids[a + 1 : b + 1]]).astype(ids.dtype) for a, b in zip(starts, stops)
               if b > a + 1]
    if close_last and streams and ids[-1] != newline:
        streams[-1] = np.append(streams[-1], newline).astype(ids.dtype)
    return streams


def _released(streams, ids):
    release_pages(ids)  # a mapped held-out text: the pages the sample touched, back to the page cache
    return streams


def describe(cfg, held_out, scored):
    """The note a run starts with when validation scores a sample (scored characters of held_out): how
    much of what, and how to change it. None when every held-out character is scored."""
    if budget(cfg, held_out) >= held_out:
        return None
    return (f"note: every validation scores the same {scored:,} of the {held_out:,} held-out characters, "
            f"{'whole lines' if cfg.data.mode == 'lines' else 'pieces'} spread over them (train.val_max_chars: "
            f"{'default' if cfg.train.val_max_chars is None else cfg.train.val_max_chars}; 0 scores all)")


def seconds_to_score(engine, ts, streams, window, windows=2):
    """About how long engine.score(ts, streams, window) takes, from the time it takes over the first
    `windows` windows of the streams it runs side by side first (the first SAMPLE_PIECES of them), so
    that a long validation can be announced before it starts: a second or so of scoring, not minutes."""
    import time

    first = [s[: windows * window + 1] for s in streams[:SAMPLE_PIECES]]
    start = time.monotonic()
    _, count = engine.score(ts, first, window)
    seconds = time.monotonic() - start
    total = sum(max(len(s) - 1, 0) for s in streams)
    return seconds * total / count if count else 0.0

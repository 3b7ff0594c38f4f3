"""Corpora and batches.

A corpus is read as text (files, a directory of text files, or stdin: reading.py), its vocabulary is the
sorted set of its characters (vocab.py), and it is held as one compact integer array (uint8 when V <=
256): a few bytes per character however large the text. Text files too large for that are encoded once
into a file of ids and memory-mapped instead (encoded.py).

Batching for truncated backpropagation through time (mode "stream"): the training text is cut into B
contiguous streams; step n of an epoch reads characters [nT, (n+1)T] of every stream, so the state left
by one window is the right context for the next. Mode "lines" trains every line as its own sequence from
the zero state, padded and masked (see LineBatches).
"""

import mmap
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np

from . import encoded
from .errors import DataError
from .reading import expand_sources, read_text
from .vocab import CHUNK, Vocab


# ------------------------------------------------------------------------------------------------ corpus


@dataclass
class Corpus:
    vocab: Vocab
    train: np.ndarray  # (N_train,) character ids, in memory or mapped from a file (encoded.py)
    val: np.ndarray  # (N_val,) character ids, possibly empty
    files: list

    def release(self):
        """Let the pages of a mapped corpus read so far go: they stay in the page cache, but no longer
        count in this process's resident memory (which would otherwise grow to the size of the text
        over an epoch). Nothing to do for a corpus in memory."""
        release_pages(self.train, self.val)


class Text:
    """Text read into memory, as load_corpus reads a part of a corpus (encoded.Mapped is the other kind)."""

    def __init__(self, text):
        self.text = text

    def __len__(self):
        return len(self.text)

    def codes(self):
        return Vocab.from_text(self.text).codes

    def ids(self, vocab):
        return vocab.encode(self.text)


def read_part(files, data_config, say=None):
    """The text of files (expand_sources' list): mapped (encoded.py) if large enough, else read."""
    if encoded.worth_mapping(files):
        return encoded.Mapped(files, data_config.encoding, data_config.errors, say)
    return Text(read_text(files, data_config.encoding, data_config.errors)[0])


ASCII_CODES = np.array([9, 10, *range(32, 127)])  # tab, newline, the printable characters


def load_corpus(sources, data_config, val_source=None, say=None, known=()):
    """Read, build the vocabulary over everything read, split off validation text. say: where a note
    goes (a large corpus being encoded, encoded.py). known: characters the vocabulary holds whether or
    not the text has them (a fine-tuned model's, finetune.py)."""
    files = expand_sources(sources, say)
    text = read_part(files, data_config, say)
    if not len(text):
        raise DataError(f"the corpus is empty ({', '.join(files)})")
    val_text = None
    if val_source is not None:
        val_text = read_part(expand_sources([val_source]), data_config, say)
        if not len(val_text):
            raise DataError(f"the validation file {val_source} is empty")
    codes = text.codes() if val_text is None else np.union1d(text.codes(), val_text.codes())
    if data_config.vocab == "ascii":
        codes = np.union1d(codes, ASCII_CODES)
    if len(known):
        codes = np.union1d(codes, np.array([ord(c) for c in known], np.uint32))
    vocab = Vocab(chr(c) for c in codes)
    ids = text.ids(vocab)
    if val_text is not None:
        train, val = ids, val_text.ids(vocab)
    else:
        n_val = int(len(ids) * data_config.val_fraction)
        train, val = ids[: len(ids) - n_val], ids[len(ids) - n_val :]
    return Corpus(vocab, train, val, files)


def release_pages(*arrays):
    """madvise(MADV_DONTNEED) on the mappings behind arrays that view one (see Corpus.release)."""
    for a in arrays:
        while a is not None and not isinstance(a, (mmap.mmap, memoryview)):
            a = getattr(a, "base", None)
        view = a.obj if isinstance(a, memoryview) else a
        if isinstance(view, mmap.mmap) and hasattr(view, "madvise") and not view.closed:
            view.madvise(mmap.MADV_DONTNEED)


def hash_ids(h, ids, piece=8 << 20):
    """Feed the bytes of ids to the hashlib object h in pieces, letting a mapped corpus's pages go after
    each, so that hashing a large corpus keeps resident memory flat (the digest is that of the whole)."""
    ids = np.ascontiguousarray(ids)
    raw = memoryview(ids).cast("B")
    for start in range(0, len(raw), piece):
        h.update(raw[start : start + piece])
        release_pages(ids)


# ----------------------------------------------------------------------------------------------- batches


class Window(NamedTuple):
    """The text of one step: inputs x and targets y, each (T, B) character ids (y is x one character on),
    and mask (T, B), each target's weight in the loss (0 where it is padding, data.loss_weight where
    data.loss_pattern matched it, else 1), or None when every target weighs 1."""

    x: np.ndarray
    y: np.ndarray
    mask: Optional[np.ndarray] = None

    def targets(self):
        """How many targets count (padding does not; a weighted target counts once)."""
        return self.y.size if self.mask is None else int(np.count_nonzero(self.mask))


class StreamBatches:
    """Windows for truncated BPTT: B contiguous streams, T characters of each per step.

    Epoch e starts at an offset below T (random if random_offset, drawn from a generator seeded by
    (seed, e), so a resumed run sees the same offsets without saving generator state). An epoch has
    `windows_per_epoch` steps; the state is reset at every epoch start.
    """

    def __init__(self, ids, batch, window, seed=0, random_offset=True, emphasis=None):
        self.ids, self.B, self.T = ids, batch, window
        self.emphasis = emphasis  # an Emphasis, or None
        self.seed, self.random_offset = seed, random_offset
        needed = batch * (window + 1) + (window - 1 if random_offset else 0)
        if len(ids) < needed:
            raise DataError(
                f"the training text has {len(ids)} character{'s' * (len(ids) != 1)}; batch {batch} x window "
                f"{window} needs at least "
                f"{needed} (lower data.batch or data.window, or give more text)"
            )
        self.stream_len = (len(ids) - (window - 1 if random_offset else 0)) // batch
        self.windows_per_epoch = (self.stream_len - 1) // window
        self.cut = 0  # lines cut into pieces: none here
        self._epoch, self._streams = None, None

    def offset(self, epoch):
        if not self.random_offset:
            return 0
        return int(np.random.default_rng([self.seed, epoch]).integers(self.T))

    def streams(self, epoch):
        """(B, stream_len) view of the text for this epoch (kept while the epoch lasts)."""
        if self._epoch != epoch:
            start = self.offset(epoch)
            self._epoch = epoch
            self._streams = self.ids[start : start + self.B * self.stream_len].reshape(self.B, self.stream_len)
        return self._streams

    def window(self, epoch, n, step=0):
        """The Window: inputs x and targets y, each (T, B), and mask None (every target counts) or the
        targets' weights (with an emphasis)."""
        s = self.streams(epoch)
        cut = slice(n * self.T, n * self.T + self.T + 1)
        chunk = s[:, cut].T.astype(np.intp)  # (T+1, B)
        if self.emphasis is None:
            return Window(chunk[:-1], chunk[1:])
        start = self.offset(epoch)
        marks = self.emphasis.marks[start : start + self.B * self.stream_len].reshape(self.B, self.stream_len)
        return Window(chunk[:-1], chunk[1:], self.emphasis.weights(marks[:, cut].T[1:]))

    def starts_sequence(self, n):
        """Whether the state is reset before window n of an epoch."""
        return n == 0


class LineBatches:
    """Every line its own sequence from the zero state (mode "lines"): the model reads a newline and the
    line, and predicts the line and its closing newline. A batch holds B lines, padded to the longest of
    them and masked; the state is reset before every batch. For corpora of independent lines, such as
    the rooms stories, where context should never leak from one line into the next.

    Epoch e visits every line once, in random batches (see _epoch_batches). A line
    longer than the window is cut into pieces of at most T - 1 characters, each trained from the zero
    state: it reads the character before it and predicts the character after it, so no false line
    break is taught.

    Curriculum: for the first `curriculum_steps` steps, batches are drawn only from the shortest lines,
    a fraction that grows linearly from `curriculum_start` to all of them; `curriculum_mix` of each of
    those batches is drawn from all the lines instead, so long lines are seen from the first step.
    """

    def __init__(self, ids, newline, batch, window, seed=0, curriculum_steps=0, curriculum_start=0.25,
                 curriculum_mix=0.0, emphasis=None):
        self.B, self.T, self.seed, self.newline = batch, window, seed, newline
        self.emphasis = emphasis  # an Emphasis, or None
        self._cached_epoch, self._cached = None, None
        self.curriculum_steps, self.curriculum_start = curriculum_steps, curriculum_start
        self.from_all = int(round(curriculum_mix * batch))  # lines per curriculum batch drawn from all of them
        self.ids = ids
        step = 1 << 24  # in chunks: a bool array the size of the corpus would cost a byte per character
        ends = [np.zeros(0, np.int64)]
        for i in range(0, len(ids), step):
            ends.append(np.flatnonzero(ids[i : i + step] == newline) + i)
            release_pages(ids)  # a mapped corpus: the pages just read go back to the page cache
        ends = np.concatenate(ends)
        starts = np.concatenate([[0], ends + 1])
        stops = np.concatenate([ends, [len(ids)]])
        keep = stops > starts  # empty lines teach nothing
        starts, stops = starts[keep], stops[keep]
        piece = window - 1
        counts = -(-(stops - starts) // piece)  # pieces per line
        self.cut = int((counts > 1).sum())
        first = np.repeat(starts, counts) + piece * (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
        self.lines = np.stack([first, np.minimum(first + piece, np.repeat(stops, counts))], axis=1)  # (n, 2)
        if len(self.lines) < batch:
            raise DataError(f"the training text has {len(self.lines)} non-empty line{'s' * (len(self.lines) != 1)}; "
                            f"data.mode lines with "
                            f"batch {batch} needs at least {batch}")
        self.by_length = np.argsort(self.lines[:, 1] - self.lines[:, 0], kind="stable")
        self.windows_per_epoch = len(self.lines) // batch

    def window(self, epoch, n, step=0):
        """The Window: x, y (T', B) and mask (T', B), T' the longest line of the batch plus one."""
        if step < self.curriculum_steps:
            share = self.curriculum_start + (1 - self.curriculum_start) * step / self.curriculum_steps
            pool = self.by_length[: max(self.B, int(share * len(self.lines)))]
            rng = np.random.default_rng([self.seed, epoch, n, 1])
            chosen = pool[rng.choice(len(pool), self.B - self.from_all, replace=False)]
            if self.from_all:
                others = np.setdiff1d(np.arange(len(self.lines)), chosen)  # no line twice in a batch
                chosen = np.concatenate([chosen, others[rng.choice(len(others), self.from_all, replace=False)]])
        else:
            chosen = self._epoch_batches(epoch)[n]
        lengths = self.lines[chosen, 1] - self.lines[chosen, 0]
        T = int(lengths.max()) + 1
        # (T+1, B): the character before the piece, the piece, the character after it, padding. For a
        # whole line the neighbours are newlines; for a piece of a longer line, the real text around it.
        seq = np.full((T + 1, self.B), self.newline, np.intp)
        marks = np.zeros((T, self.B), np.uint8) if self.emphasis is not None else None  # the targets' marks
        n = len(self.ids)
        for b, (start, stop) in enumerate(self.lines[chosen]):
            seq[0, b] = self.ids[start - 1] if start > 0 else self.newline
            seq[1 : 1 + stop - start, b] = self.ids[start:stop]
            seq[1 + stop - start, b] = self.ids[stop] if stop < n else self.newline
            if marks is not None:
                marks[: stop - start + (stop < n), b] = self.emphasis.marks[start : stop + 1]
        mask = (np.arange(T)[:, None] <= lengths[None, :]).astype(np.float32)  # (T, B)
        if marks is not None:
            mask *= self.emphasis.weights(marks)
        return Window(seq[:-1], seq[1:], mask)

    def _epoch_batches(self, epoch):
        """(windows_per_epoch, B) line indices: a permutation seeded by (seed, epoch), cut into batches.
        Batches are not sorted by length: similar lengths would put similar stories together, and a model
        then swings between kinds of line instead of learning all of them (docs/memory.md)."""
        if self._cached_epoch != epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.lines))
            self._cached = order[: self.windows_per_epoch * self.B].reshape(self.windows_per_epoch, self.B)
            self._cached_epoch = epoch
        return self._cached

    def starts_sequence(self, n):
        return True


def make_batches(ids, vocab, data_config, seed):
    """The batching of data_config.mode over the training ids."""
    emphasis = Emphasis.find(ids, vocab, data_config.loss_pattern, data_config.loss_weight)
    if data_config.mode == "lines":
        if "\n" not in vocab.index:
            raise DataError("data.mode lines needs a corpus with newlines")
        return LineBatches(ids, vocab.index["\n"], data_config.batch, data_config.window, seed,
                           data_config.curriculum_steps, data_config.curriculum_start, data_config.curriculum_mix,
                           emphasis)
    return StreamBatches(ids, data_config.batch, data_config.window, seed, data_config.random_offset, emphasis)


@dataclass
class Emphasis:
    """Characters of the training text whose prediction weighs more in the loss (data.loss_pattern,
    data.loss_weight): a mark (0 or 1) per character, found once, and the weight of a marked one.

    The pattern is a Python regular expression searched line by line; a match marks its characters, or
    only those of its groups when it has any: "(\\w+) said hi to (\\w+)" marks the two names. Costs a byte
    per character of the training text."""

    marks: np.ndarray  # (N_train,) uint8
    weight: float
    count: int  # characters marked

    @classmethod
    def find(cls, ids, vocab, pattern, weight):
        """The Emphasis of pattern over ids, or None without a pattern."""
        if not pattern:
            return None
        import re

        regex = re.compile(pattern)
        marks = np.zeros(len(ids), np.uint8)
        newline = vocab.index.get("\n")
        start = 0
        while start < len(ids):  # pieces of whole lines, so that no match is cut
            stop = min(start + CHUNK, len(ids))
            if stop < len(ids) and newline is not None:
                ends = np.flatnonzero(ids[start:stop] == newline)
                stop = start + int(ends[-1]) + 1 if len(ends) else stop
            text = vocab.decode(ids[start:stop])
            for match in regex.finditer(text):
                spans = [match.span(g) for g in range(1, len(match.groups()) + 1)] or [match.span()]
                for a, b in spans:
                    if a >= 0:
                        marks[start + a : start + b] = 1
            start = stop
            release_pages(ids)
        return cls(marks, float(weight), int(np.count_nonzero(marks)))

    def weights(self, marks):
        """marks (any shape, 0 or 1) -> the weights of those targets, float32."""
        return (1.0 + (self.weight - 1.0) * marks).astype(np.float32)


def split_streams(ids, n_streams, min_len=2):
    """Cut ids into at most n_streams contiguous pieces of near-equal length (each at least min_len)."""
    n = min(n_streams, len(ids) // min_len)
    bounds = np.linspace(0, len(ids), n + 1).astype(int)
    return [ids[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


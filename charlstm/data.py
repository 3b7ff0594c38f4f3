"""Corpora, vocabularies and batches.

A corpus is read as text (files, a directory of text files, or stdin), its vocabulary is the sorted set of
its characters, and it is held as one compact integer array (uint8 when V <= 256): a few bytes per
character however large the text.

Batching for truncated backpropagation through time (mode "stream"): the training text is cut into B
contiguous streams; step n of an epoch reads characters [nT, (n+1)T] of every stream, so the state left
by one window is the right context for the next. Mode "lines" trains every line as its own sequence from
the zero state, padded to the window and masked (see LineBatches).
"""

import os
import sys
from dataclasses import dataclass

import numpy as np

from .errors import DataError

BINARY_SNIFF = 8192  # bytes read to decide whether a file in a directory is text


# ---------------------------------------------------------------------------------------------- reading


def read_bytes(source):
    """The raw bytes of a path, or of stdin for "-"."""
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        with open(source, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise DataError(f"no such file: {source}") from None
    except IsADirectoryError:
        raise DataError(f"{source} is a directory") from None
    except OSError as e:
        raise DataError(f"cannot read {source}: {e.strerror}") from None


def decode(raw, name, encoding="utf-8", errors="strict"):
    """Bytes -> str. An invalid byte is a DataError naming the file, the byte offset and the line."""
    try:
        return raw.decode(encoding, errors=errors)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"{name}: invalid {encoding} byte 0x{raw[e.start]:02x} at byte offset {e.start} (line {line}); "
            f"use --encoding to name the right encoding or --errors replace to substitute U+FFFD"
        ) from None


def expand_sources(sources):
    """Files as given; a directory becomes its text files (recursively, sorted by path, hidden entries and
    files with NUL bytes skipped); "-" stays "-"."""
    files = []
    for source in sources:
        if source != "-" and os.path.isdir(source):
            found = []
            for root, dirs, names in os.walk(source):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [os.path.join(root, n) for n in names if not n.startswith(".")]
            text_files = [p for p in sorted(found) if _looks_like_text(p)]
            if not text_files:
                raise DataError(f"directory {source} holds no text files")
            files += text_files
        else:
            files.append(source)
    if files.count("-") > 1:
        raise DataError("stdin (-) can be read only once")
    return files


def _looks_like_text(path):
    try:
        with open(path, "rb") as fh:
            return b"\0" not in fh.read(BINARY_SNIFF)
    except OSError:
        return False


def read_text(sources, encoding="utf-8", errors="strict"):
    """The concatenated text of the sources (see expand_sources) and the list of files read."""
    files = expand_sources(sources)
    parts = [decode(read_bytes(f), "stdin" if f == "-" else f, encoding, errors) for f in files]
    return "".join(parts), files


# -------------------------------------------------------------------------------------------- vocabulary


def codepoints(text):
    """str -> (N,) uint32 array of code points, without a Python object per character."""
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


class Vocab:
    """The characters a model knows, in index order (sorted by code point)."""

    def __init__(self, chars):
        self.chars = list(chars)
        if not all(isinstance(c, str) and len(c) == 1 for c in self.chars):
            raise DataError("a vocabulary must be single characters")
        if len(set(self.chars)) != len(self.chars):
            raise DataError("a vocabulary must not repeat a character")
        if not self.chars:
            raise DataError("a vocabulary needs at least one character")
        self.codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        self.index = {c: i for i, c in enumerate(self.chars)}
        if np.any(np.diff(self.codes.astype(np.int64)) <= 0):
            raise DataError("a vocabulary must be sorted by code point")

    @classmethod
    def from_text(cls, text):
        if not text:
            raise DataError("the corpus is empty")
        return cls(chr(c) for c in np.unique(codepoints(text)))

    def __len__(self):
        return len(self.chars)

    @property
    def dtype(self):
        return np.uint8 if len(self) <= 256 else np.uint16 if len(self) <= 65536 else np.uint32

    def unknown(self, text):
        """The characters of text missing from this vocabulary, sorted."""
        codes = np.unique(codepoints(text))
        return [chr(c) for c in codes[~np.isin(codes, self.codes)]]

    def encode(self, text, unknown="error"):
        """text -> (N,) integer array. unknown="error" raises a DataError naming the missing characters;
        unknown="skip" drops them."""
        codes = codepoints(text)
        ids = np.searchsorted(self.codes, codes)
        ids = np.minimum(ids, len(self) - 1)
        known = self.codes[ids] == codes
        if not known.all():
            if unknown != "skip":
                raise DataError(f"characters not in the model's vocabulary: {describe_chars(self.unknown(text))}")
            ids = ids[known]
        return ids.astype(self.dtype)

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)


def describe_chars(chars, limit=20):
    shown = " ".join(repr(c) for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")


# ------------------------------------------------------------------------------------------------ corpus


@dataclass
class Corpus:
    vocab: Vocab
    train: np.ndarray  # (N_train,) character ids
    val: np.ndarray  # (N_val,) character ids, possibly empty
    files: list


def load_corpus(sources, data_config, val_source=None):
    """Read, build the vocabulary over everything read, split off validation text."""
    text, files = read_text(sources, data_config.encoding, data_config.errors)
    if not text:
        raise DataError(f"the corpus is empty ({', '.join(files)})")
    val_text = None
    if val_source is not None:
        val_text, _ = read_text([val_source], data_config.encoding, data_config.errors)
        if not val_text:
            raise DataError(f"the validation file {val_source} is empty")
    vocab = Vocab.from_text(text + (val_text or ""))
    ids = vocab.encode(text)
    if val_text is not None:
        train, val = ids, vocab.encode(val_text)
    else:
        n_val = int(len(ids) * data_config.val_fraction)
        train, val = ids[: len(ids) - n_val], ids[len(ids) - n_val :]
    return Corpus(vocab, train, val, files)


# ----------------------------------------------------------------------------------------------- batches


class StreamBatches:
    """Windows for truncated BPTT: B contiguous streams, T characters of each per step.

    Epoch e starts at an offset below T (random if random_offset, drawn from a generator seeded by
    (seed, e), so a resumed run sees the same offsets without saving generator state). An epoch has
    `windows_per_epoch` steps; the state is reset at every epoch start.
    """

    def __init__(self, ids, batch, window, seed=0, random_offset=True):
        self.ids, self.B, self.T = ids, batch, window
        self.seed, self.random_offset = seed, random_offset
        needed = batch * (window + 1) + (window - 1 if random_offset else 0)
        if len(ids) < needed:
            raise DataError(
                f"the training text has {len(ids)} characters; batch {batch} x window {window} needs at least "
                f"{needed} (lower data.batch or data.window, or give more text)"
            )
        self.stream_len = (len(ids) - (window - 1 if random_offset else 0)) // batch
        self.windows_per_epoch = (self.stream_len - 1) // window

    def offset(self, epoch):
        if not self.random_offset:
            return 0
        return int(np.random.default_rng([self.seed, epoch]).integers(self.T))

    def streams(self, epoch):
        """(B, stream_len) view of the text for this epoch."""
        start = self.offset(epoch)
        return self.ids[start : start + self.B * self.stream_len].reshape(self.B, self.stream_len)

    def window(self, epoch, n):
        """Inputs x and targets y, each (T, B), and mask None (every target counts)."""
        s = self.streams(epoch)
        chunk = s[:, n * self.T : n * self.T + self.T + 1].T.astype(np.intp)  # (T+1, B)
        return chunk[:-1], chunk[1:], None

    def starts_sequence(self, n):
        """Whether the state is reset before window n of an epoch."""
        return n == 0


def split_streams(ids, n_streams, min_len=2):
    """Cut ids into at most n_streams contiguous pieces of near-equal length (each at least min_len)."""
    n = min(n_streams, len(ids) // min_len)
    bounds = np.linspace(0, len(ids), n + 1).astype(int)
    return [ids[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

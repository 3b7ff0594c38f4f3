"""The vocabulary: the characters a model knows, sorted by code point, and text <-> ids.

Text is converted a chunk at a time (CHUNK characters) through arrays of code points, never a Python
object per character, so that a large corpus costs a few bytes per character. Ids are held in the
smallest unsigned type that holds V of them (uint8 when V <= 256).
"""

import numpy as np

from .errors import DataError

CHUNK = 1 << 20  # characters converted at a time, so a large corpus never needs 12 bytes per character


def codepoints(text):
    """str -> (N,) uint32 array of code points, without a Python object per character."""
    return np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)


def _chunks(text):
    for start in range(0, len(text), CHUNK):
        yield codepoints(text[start : start + CHUNK])


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
    def from_text(cls, *texts):
        """The sorted characters of all the texts."""
        if not any(texts):
            raise DataError("the corpus is empty")
        codes = np.zeros(0, np.uint32)
        for text in texts:
            for chunk in _chunks(text):
                codes = np.union1d(codes, np.unique(chunk))
        return cls(chr(c) for c in codes)

    def __len__(self):
        return len(self.chars)

    @property
    def dtype(self):
        return np.uint8 if len(self) <= 256 else np.uint16 if len(self) <= 65536 else np.uint32

    def unknown(self, text):
        """The characters of text missing from this vocabulary, sorted."""
        missing = np.zeros(0, np.uint32)
        for chunk in _chunks(text):
            codes = np.unique(chunk)
            missing = np.union1d(missing, codes[~np.isin(codes, self.codes)])
        return [chr(c) for c in missing]

    def encode(self, text, unknown="error"):
        """text -> (N,) integer array of the smallest unsigned type that holds V ids, a chunk at a time.
        unknown="error" raises a DataError naming the missing characters; "skip" drops them."""
        out = np.empty(len(text), self.dtype)  # filled in place: no second copy of a large corpus
        n = 0
        for codes in _chunks(text):
            ids = np.minimum(np.searchsorted(self.codes, codes), len(self) - 1)
            known = self.codes[ids] == codes
            if not known.all():
                if unknown != "skip":
                    raise DataError(f"characters not in the model's vocabulary: {describe_chars(self.unknown(text))}")
                ids = ids[known]
            out[n : n + len(ids)] = ids
            n += len(ids)
        return out[:n] if n < len(out) else out

    def decode(self, ids):
        """ids -> str, through their code points: no Python object per character."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise TypeError(f"ids must be a sequence of integers, not {ids.ndim}-D {ids.dtype}")
        ids = ids.astype(np.intp, copy=False)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"an id outside the vocabulary of {len(self)} characters")
        return self.codes[ids].tobytes().decode("utf-32-le", errors="surrogatepass")


def encode_text(vocab, text, unknown="error", warn=None, where=None):
    """text -> ids for a model's vocabulary. Missing characters are a DataError naming them, or, with
    unknown="skip", dropped with a warning through warn (a callable taking one line)."""
    missing = vocab.unknown(text)
    if missing:
        place = f" (in {where})" if where else ""
        if unknown != "skip":
            raise DataError(f"characters not in the model's vocabulary: {describe_chars(missing)}{place}; "
                            f"--unknown skip drops them")
        if warn is not None:
            warn(f"warning: dropped characters not in the vocabulary: {describe_chars(missing)}{place}")
    return vocab.encode(text, unknown="skip")


def line_start(vocab, ids):
    """ids (N,) read as the start of a line: after a newline, from the zero state, for every model. That is
    how every line is read in training with data.mode lines, and a lines model reads a first character
    straight from the zero state badly (docs/memory.md); a model trained on one stream sees the zero
    state only at the start of its text, where a newline is as good a context as any. Unchanged if the
    text starts with a newline or the vocabulary has none."""
    newline = vocab.index.get("\n")
    if newline is None or (len(ids) and ids[0] == newline):
        return ids
    return np.concatenate([[newline], ids]).astype(np.intp)


def describe_chars(chars, limit=20):
    shown = " ".join(repr(c) for c in chars[:limit])
    return shown + (f" and {len(chars) - limit} more" if len(chars) > limit else "")

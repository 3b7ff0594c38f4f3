"""Reading text: files, directories of text files and stdin, as bytes, decoded with errors that name the
file, the byte offset and the line.

A directory is read as its text files, recursively, sorted by path (hidden entries, and files with NUL
bytes, skipped). Nothing is normalised: no newline translation, no Unicode normalisation. Text too large
to hold as one string is read a chunk at a time by encoded.py, with the same errors.
"""

import contextlib
import os
import sys

from .errors import DataError

BINARY_SNIFF = 8192  # bytes read to decide whether a file in a directory is text

def read_bytes(source):
    """The raw bytes of a path, or of stdin for "-"."""
    if source == "-":
        return sys.stdin.buffer.read()
    with open_source(source) as fh:
        return fh.read()


@contextlib.contextmanager
def open_source(path):
    """A text file opened for reading bytes; a file that cannot be read is a DataError that says why."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise DataError(f"{path} is a directory") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    with fh:
        try:
            yield fh
        except OSError as e:
            raise DataError(f"cannot read {path}: {e.strerror}") from None


def decode(raw, name, encoding="utf-8", errors="strict"):
    """Bytes -> str. An invalid byte is a DataError naming the file, the byte offset and the line."""
    try:
        return raw.decode(encoding, errors=errors)
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}") from None
    except UnicodeDecodeError as e:
        raise invalid_byte(name, encoding, raw[e.start], e.start, raw.count(b"\n", 0, e.start) + 1,
                           binary=holds_nul(raw)) from None


def invalid_byte(name, encoding, byte, offset, line, binary=False):
    """The DataError for a byte that is not valid in the encoding, wherever the text was decoded. binary:
    the file holds NUL bytes, as a directory's binary files do (skipped there): not text, so --errors
    replace is not offered, which would train on the file's bytes."""
    where = f"{name}: invalid {encoding} byte 0x{byte:02x} at byte offset {offset} (line {line})"
    if binary:
        return DataError(f"{where}; it holds NUL bytes, so it looks like a binary file, not text (text in UTF-16 "
                         f"needs --encoding utf-16)")
    return DataError(f"{where}; use --encoding to name the right encoding or --errors replace to substitute U+FFFD")


def expand_sources(sources, say=None):
    """Files as given; a directory becomes its text files (recursively, sorted by path, hidden entries and
    files with NUL bytes skipped, which say, if given, is told: how many, and one of them); "-" stays "-"."""
    files = []
    for source in sources:
        if source != "-" and os.path.isdir(source):
            found = []
            for root, dirs, names in os.walk(source):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found += [os.path.join(root, n) for n in names if not n.startswith(".")]
            text_files = [p for p in sorted(found) if looks_like_text(p)]
            if not text_files:
                raise DataError(f"directory {source} holds no text files")
            skipped = sorted(set(found) - set(text_files))
            if skipped and say is not None:
                say(f"note: skipped {len(skipped)} binary file{'s' * (len(skipped) > 1)} (with NUL bytes) in "
                    f"{source}, e.g. {skipped[0]}")
            files += text_files
        else:
            files.append(source)
    if files.count("-") > 1:
        raise DataError("stdin (-) can be read only once")
    return files


def holds_nul(head):
    """Whether the first BINARY_SNIFF bytes hold a NUL: a binary file (or UTF-16 or UTF-32 text)."""
    return b"\0" in head[:BINARY_SNIFF]


def looks_like_text(path):
    """No NUL byte in the first BINARY_SNIFF bytes (False for a file that cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return not holds_nul(fh.read(BINARY_SNIFF))
    except OSError:
        return False


def read_text(sources, encoding="utf-8", errors="strict"):
    """The concatenated text of the sources (see expand_sources) and the list of files read."""
    files = expand_sources(sources)
    parts = [decode(read_bytes(f), "stdin" if f == "-" else f, encoding, errors) for f in files]
    return "".join(parts), files


def check_text(text, where):
    """A DataError for text holding lone surrogates: bytes the shell passed on undecoded, not characters."""
    bad = [i for i, c in enumerate(text) if 0xD800 <= ord(c) <= 0xDFFF]
    if bad:
        raise DataError(f"{where} is not valid UTF-8 (an undecodable byte at character {bad[0] + 1})")
    return text

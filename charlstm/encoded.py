"""Corpora larger than memory: the text encoded once into a file of character ids, and memory-mapped.

Text files of MAP_FROM bytes or more (together; stdin is always read into memory) are never held as one
string. They are read a chunk at a time, twice: once for their characters, once to write every
character's id (one byte when V <= 256) to a file that training maps into memory. The pages it reads
come from the page cache, and the trainer lets them go again at every checkpoint and validation
(Corpus.release), so resident memory does not grow with the corpus. The ids are reused while every text
file keeps its size and modification time (and the encoding settings stay); otherwise they are built
again.

Where: beside the first text file, as two hidden files (hidden, so that a directory corpus never reads
them as text):

    .NAME.KEY.ids     the ids, raw, in the vocabulary's integer type (vocab.Vocab.dtype)
    .NAME.KEY.json    what they encode: the files with their sizes and times, the encoding settings,
                      the text's own characters, the vocabulary of the ids and their count

KEY is a digest of the files' absolute paths and the encoding settings. When that directory cannot be
written, both go to the user's cache directory (cache_dir(): $XDG_CACHE_HOME/charlstm or
~/.cache/charlstm), which the note that announces a build names. The .json is written last and locked
(flock) while a process checks or builds, so that the processes of one torchrun build the ids once. The
ids are for one vocabulary: a --val text with characters the corpus lacks widens it, and the ids are
written again for it (the characters, recorded, are not read again).
"""

import codecs
import hashlib
import json
import mmap
import os
import pathlib
import sys

import numpy as np

from .errors import DataError
from .reading import invalid_byte, looks_like_text, open_source
from .vocab import CHUNK, codepoints

try:
    import fcntl
except ImportError:  # not on Windows: the ids are built unlocked there
    fcntl = None

MAP_FROM = 64 << 20  # bytes of text from which a corpus is mapped rather than read into memory
READ = 4 << 20  # bytes read at a time
FORMAT, VERSION = "charlstm-ids", 1
UNICODE = 0x110000  # code points


def worth_mapping(files):
    """Whether files (reading.expand_sources' list) are text files large enough to map."""
    if "-" in files:
        return False
    try:
        return sum(os.path.getsize(f) for f in files) >= MAP_FROM
    except OSError:  # a missing file: reading it into memory names it
        return False


def cache_dir():
    """Where the ids of a text in a directory that cannot be written go."""
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "charlstm"


class Mapped:
    """Text files as data.load_corpus reads a part of a corpus: their length in characters, their
    characters (`codes`) and their ids under a vocabulary (`ids`), the ids a read-only array mapped from
    the .ids file, which is built or rebuilt when needed."""

    def __init__(self, files, encoding="utf-8", errors="strict", say=None):
        self.names = list(files)  # as given: how messages name them
        self.files, self.encoding, self.errors = [os.path.abspath(f) for f in files], encoding, errors
        self.say = say or (lambda text: None)
        try:
            codecs.getincrementaldecoder(encoding)
        except LookupError:
            raise DataError(f"unknown encoding {encoding!r}") from None
        self.moved = None  # the text's directory, when it cannot be written and the files go to cache_dir()
        key = hashlib.sha256(json.dumps([self.files, encoding, errors]).encode()).hexdigest()[:16]
        self.base = self._place(f"{os.path.basename(self.files[0])}.{key}")
        with _Record(self._path(".json")) as record:
            try:
                self.meta = self._counted(record)
            except DataError:
                if not record.meta:  # a record made for this text alone: leave nothing beside a bad file
                    record.path.unlink(missing_ok=True)
                raise

    def __len__(self):
        return self.meta["length"]

    def codes(self):
        """The text's characters, sorted code points (uint32)."""
        return np.array(self.meta["chars"], np.uint32)

    def ids(self, vocab):
        """(N,) ids of the text under vocab (a vocab.Vocab holding every character of the text), mapped."""
        with _Record(self._path(".json")) as record:
            meta = self._counted(record)
            ids = self._path(".ids")
            complete = ids.exists() and ids.stat().st_size == meta["length"] * np.dtype(vocab.dtype).itemsize
            if meta["vocab"] != vocab.codes.tolist() or not complete:
                meta = self._write_ids(record, meta, vocab)
            self.meta = meta
            return _map(ids, vocab.dtype, meta["length"])  # under the lock: no one replaces the file meanwhile

    def _place(self, name):
        """The base path of the two files: beside the first text file if its directory can be written,
        else in cache_dir()."""
        here = pathlib.Path(self.files[0]).parent / f".{name}"
        try:
            with open(f"{here}.json", "ab"):
                return here
        except OSError:
            self.moved = here.parent
        elsewhere = cache_dir()
        try:
            elsewhere.mkdir(parents=True, exist_ok=True)
            with open(elsewhere / f"{name}.json", "ab"):
                return elsewhere / name
        except OSError as e:
            raise DataError(f"cannot write the encoded corpus beside {self.files[0]} or in {elsewhere}: "
                            f"{e.strerror}") from None

    def _path(self, suffix):
        return pathlib.Path(f"{self.base}{suffix}")

    def _stats(self):
        out = []
        for f, name in zip(self.files, self.names):
            try:
                st = os.stat(f)
            except OSError as e:
                raise DataError(f"cannot read {name}: {e.strerror}") from None
            out.append([f, st.st_size, st.st_mtime_ns])
        return out

    def _counted(self, record):
        """The record, if it describes these files as they are now; else the first pass: read the text
        for its characters and length, and record them (no ids yet)."""
        meta = record.meta
        if (meta.get("format") == FORMAT and meta.get("version") == VERSION and meta.get("files") == self._stats()
                and meta.get("encoding") == self.encoding and meta.get("errors") == self.errors):
            return meta
        stats = self._stats()
        seen, length = np.zeros(UNICODE, bool), 0
        for codes in self._decoded():
            seen[codes] = True
            length += len(codes)
        self._check_unchanged(stats)
        meta = {"format": FORMAT, "version": VERSION, "files": stats, "encoding": self.encoding,
                "errors": self.errors, "chars": np.flatnonzero(seen).tolist(), "length": length, "vocab": None}
        record.write(meta)
        return meta

    def _write_ids(self, record, meta, vocab):
        """Second pass: every character's id under vocab, to the .ids file (through a temporary file, so a
        crash leaves no half-written ids under the final name); returns the record, updated."""
        if not np.isin(meta["chars"], vocab.codes).all():  # the text changed since its characters were read
            raise self._changed()
        ids = self._path(".ids")
        total = sum(size for _, size, _ in meta["files"])
        moved = f" ({self.moved} cannot be written)" if self.moved else ""
        self.say(f"note: encoding {total / 1e6:,.0f} MB of text once into {ids}{moved}; later runs map it while "
                 f"the text is unchanged")
        table = np.zeros(UNICODE, vocab.dtype)  # code point -> id
        table[vocab.codes] = np.arange(len(vocab))
        tmp = self._path(f".{os.getpid()}.tmp")
        written = 0
        try:
            with open(tmp, "wb") as out:  # written, not mapped: pages written through a mapping are resident
                for codes in self._decoded():
                    out.write(table[codes].tobytes())
                    written += len(codes)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, ids)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise DataError(f"cannot write the encoded corpus {ids}: {e.strerror}") from None
        if written != meta["length"]:
            raise self._changed()
        self._check_unchanged(meta["files"])
        meta = dict(meta, vocab=vocab.codes.tolist())
        record.write(meta)
        return meta

    def _check_unchanged(self, stats):
        if self._stats() != stats:
            raise self._changed()

    def _changed(self):
        return DataError(f"{', '.join(self.names)} changed while it was being encoded; try again")

    def _decoded(self):
        """The text of every file, a chunk at a time, as arrays of code points; an invalid byte is the
        DataError reading.decode makes of it, naming the file, the byte offset and the line."""
        for path, name in zip(self.files, self.names):
            offset = 0
            with open_source(name) as fh:
                decoder = _decoder(self.encoding, self.errors, fh.read(4))
                fh.seek(0)
                while True:
                    raw = fh.read(READ)
                    try:
                        text = decoder.decode(raw, final=not raw)
                    except UnicodeDecodeError as e:
                        at = offset - (len(e.object) - len(raw)) + e.start  # e.object: bytes held back, then raw
                        raise invalid_byte(name, self.encoding, e.object[e.start], at, _line_at(path, at),
                                           binary=not looks_like_text(path)) from None
                    offset += len(raw)
                    for start in range(0, len(text), CHUNK):
                        yield codepoints(text[start : start + CHUNK])
                    if not raw:
                        break


class _Record:
    """The .json record, opened and locked (flock) while the block lasts: `meta` is what it held on entry
    ({} if nothing readable). The lock is on this very file, so it is rewritten in place, not renamed
    over; written last, a record cut short by a crash reads as none, and the ids are built again."""

    def __init__(self, path):
        self.path, self.fh, self.meta = path, None, {}

    def __enter__(self):
        self.fh = open(self.path, "a+b")
        if fcntl is not None:
            fcntl.flock(self.fh, fcntl.LOCK_EX)
        self.fh.seek(0)
        try:
            meta = json.loads(self.fh.read().decode("utf-8"))
        except ValueError:
            meta = {}
        self.meta = meta if isinstance(meta, dict) else {}
        return self

    def __exit__(self, *exc):
        self.fh.close()  # releases the lock

    def write(self, meta):
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(json.dumps(meta).encode("utf-8"))
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.meta = meta


def _decoder(encoding, errors, head):
    """An incremental decoder that reads a text as bytes.decode(encoding) reads it whole. The two differ
    on UTF-16 and UTF-32 without a byte-order mark: the whole text is read in this machine's byte order,
    where the incremental decoder refuses; so it is given that order."""
    name = codecs.lookup(encoding).name
    marks = {"utf-16": (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE), "utf-32": (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)}
    if name in marks and not head.startswith(marks[name]):
        name += "-le" if sys.byteorder == "little" else "-be"
    return codecs.getincrementaldecoder(name)(errors)


def _map(path, dtype, length):
    """The file's ids as a read-only array backed by the page cache."""
    if length == 0:
        return np.zeros(0, dtype)
    with open(path, "rb") as fh:
        view = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    return np.frombuffer(view, dtype, count=length)


def _line_at(path, offset):
    """The line number of a byte offset in a file, counted a chunk at a time."""
    lines = 1
    with open(path, "rb") as fh:
        while offset > 0:
            raw = fh.read(min(READ, offset))
            if not raw:
                break
            lines += raw.count(b"\n")
            offset -= len(raw)
    return lines

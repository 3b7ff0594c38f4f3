"""Prompts in, completions out: the shell-pipeline side of `charlstm sample`.

Prompts are read from stdin a line at a time without waiting for the end of the input: a batch takes
the lines already available (up to its size), so a slow producer gets answers as it goes and a large
file is still processed in full batches. Output is written in input order and flushed line by line.
"""

import json
import os
import select

from .errors import DataError


def prompt_batches(stream, size):
    """Batches of prompts (str, without their line ending) from a binary stream such as sys.stdin.buffer."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # an in-memory stream: just read it
        fd = None
    pending = b""
    line_no = 0
    eof = False
    while not eof or pending:
        batch = []
        while len(batch) < size:
            newline = pending.find(b"\n")
            if newline >= 0:
                line, pending = pending[:newline], pending[newline + 1 :]
            elif eof:
                if not pending:
                    break
                line, pending = pending, b""
            elif batch and not _readable(fd):
                break  # answer what we have rather than wait for more input
            else:
                chunk = os.read(fd, 1 << 16) if fd is not None else stream.read(1 << 16)
                if chunk:
                    pending += chunk
                else:
                    eof = True
                continue
            line_no += 1
            batch.append(_decode(line, line_no))
        if batch:
            yield batch


def _readable(fd):
    if fd is None:
        return True
    try:
        return bool(select.select([fd], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _decode(line, line_no):
    if line.endswith(b"\r"):
        line = line[:-1]
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"stdin line {line_no}: invalid UTF-8 byte 0x{line[e.start]:02x} at column {e.start + 1}") from None


class Writer:
    """Writes results in order. On a TTY (live) the first unfinished sequence streams character by
    character; otherwise each result is written whole, one per line (text) or as a JSON object (jsonl)."""

    def __init__(self, out, fmt="text", live=False):
        self.out, self.fmt, self.live = out, fmt, live and fmt == "text"

    def batch(self, requests):
        """Start a batch; returns the on_step callback for sample.generate (None when not live)."""
        self.requests, self.k, self.shown = requests, 0, None
        return self._on_step if self.live else None

    def _on_step(self, text_from, done):
        while self.k < len(self.requests):
            r = self.requests[self.k]
            if self.shown is None:
                self.out.write(r.prefix)
                self.shown = 0
            new = text_from(self.k, self.shown)
            self.out.write(new)
            self.shown += len(new)
            if not done[self.k]:
                break
            self.out.write((r.suffix or "") + "\n")
            self.k, self.shown = self.k + 1, None
        self.out.flush()

    def results(self, results, seed):
        """The finished batch: written now unless it already streamed."""
        if self.live:
            return
        for r in results:
            if self.fmt == "jsonl":
                record = {"prompt": r.prompt, "completion": r.completion, "text": r.text, "logprob": r.logprob,
                          "seed": seed}
                self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                self.out.write(r.text + "\n")
            self.out.flush()

"""Prompts in, completions out: the shell-pipeline side of `charlstm sample`.

Prompts are read from stdin a line at a time without waiting for the end of the input: a batch takes
the lines already available (up to its size), so a slow producer gets answers as it goes and a large
file is still processed in full batches. Samples are written in input order, each as early as that
order allows: the first unfinished one character by character as it is generated (see Writer).
"""

import json
import os
import select
import time

from .errors import DataError
from .sample import Collector, result, sample_seed


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
    """The sink of `charlstm sample`: writes the samples of each batch in input order, each as early as
    the order allows. In text format the first unfinished sample (the head) goes out character by
    character as it is generated, its prompt first; the others are held (as text) until every sample
    before them is out, then go out whole. In jsonl, each record goes out when its sample and all before
    it are done. So with one sequence per batch nothing is held and memory does not grow with the length.

    Samples are separated by `separator` (text format), written after a sample's closing newline and
    before the next sample. Output is flushed at every character on a terminal, and otherwise at every
    newline and at least every FLUSH_SECONDS, so a pipe (`| tee`) sees text as it comes and an interrupt
    keeps what was made.
    """

    FLUSH_SECONDS = 0.25

    def __init__(self, out, vocab, fmt="text", separator="", seed=0, tty=False, clock=time.monotonic):
        self.out, self.vocab, self.fmt, self.separator, self.tty, self.clock = out, vocab, fmt, separator, tty, clock
        self.seed = seed  # the --seed of the run; jsonl reports each sample's own (see sample.sample_seed), or
        # null for None: greedy samples draw nothing, so no seed plays a part
        self.chars = vocab.chars
        self.written = 0  # samples written, over all batches
        self.unflushed = False
        self.flushed_at = clock()

    def start(self, requests):
        """Begin a batch of requests, in input order; returns the sink for sample.run."""
        self.requests, self.head, self.opened = requests, 0, False
        self.held = Collector(self.vocab, len(requests)) if self.fmt == "jsonl" or len(requests) > 1 else None
        return self

    def step(self, chosen, keep, done, logprob):
        """After each generated character: stream the head's, and write whatever has finished in order."""
        newline = False
        self.logprob = logprob  # (B,) so far: what an interrupted jsonl record reports
        if self.fmt == "text" and not self.opened:  # the first step: the prompts were good, start writing
            self._open()
        if self.held is not None:
            self.held.step(chosen, keep)
        h = self.head
        if self.fmt == "text" and keep[h]:
            ch = self.chars[chosen[h]]
            self.out.write(ch)
            self.unflushed, newline = True, ch == "\n"
        while self.head < len(self.requests) and done[self.head]:
            self._close(logprob[self.head])
            newline = True
        if self.unflushed and (self.tty or newline or self.clock() - self.flushed_at >= self.FLUSH_SECONDS):
            self.flush()

    def finish(self, logprob):
        """The batch is done: write what is left of it."""
        if self.fmt == "text" and not self.opened and self.requests:
            self._open()
        while self.head < len(self.requests):
            self._close(logprob[self.head])
        self.flush()

    def interrupted(self):
        """Ctrl-C: in jsonl, write the samples of the batch not yet written, as far as they got, each
        marked "interrupted" (in text format the head went out as it came; the others are lost)."""
        if self.fmt != "jsonl" or self.held is None or getattr(self, "logprob", None) is None:
            return
        for h in range(self.head, len(self.requests)):
            self._record(h, self.logprob[h], interrupted=True)
        self.flush()

    def flush(self):
        self.out.flush()
        self.unflushed, self.flushed_at = False, self.clock()

    def _record(self, h, logprob, interrupted=False):
        """jsonl: the record of sample h of the batch."""
        r = self.requests[h]
        res = result(r, self.held.text(h), float(logprob))
        self.held.drop(h)
        record = {"prompt": res.prompt, "completion": res.completion, "text": res.text, "logprob": res.logprob,
                  "seed": None if self.seed is None else sample_seed(self.seed, r)}
        if interrupted:
            record["interrupted"] = True
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _open(self):
        """Text format: start writing the head: the separator, its prompt (the text before a blank) and
        what it has made so far, which from now on goes out as it comes instead of being held."""
        r = self.requests[self.head]
        self.opened = True
        self.out.write((self.separator if self.written else "") + r.prefix)
        if self.held is not None:
            self.out.write(self.held.text(self.head))
            self.held.drop(self.head)
        self.unflushed = True

    def _close(self, logprob):
        """The head is done: end it, and open the next."""
        r = self.requests[self.head]
        if self.fmt == "jsonl":
            self._record(self.head, logprob)
        else:
            self.out.write((r.suffix or "") + "\n")
        self.written += 1
        self.head += 1
        self.unflushed = True
        if self.fmt == "text" and self.head < len(self.requests):
            self._open()

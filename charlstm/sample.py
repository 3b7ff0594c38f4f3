"""Completing prompts and filling blanks, many sequences at once.

All sequences of a batch first read their prompts side by side, from the zero state and a newline (a
prompt starts a line, see `vocab.line_start`), as training reads a window (`stepwise.read`); then they
advance together, one character per step through a `stepwise.Stepper`, each sampling until its own stop
condition; a sequence that is done idles while the others finish. For sequence b at step t:

    x_b,0 = the prompt's last character        x_b,t = the character drawn at step t - 1
    h_b,t = cell(x_b,t, h_b,t-1)               (h_b,-1: the state after the rest of the prompt)
    the character drawn at step t ~ softmax(decoder(h_b,t) / temperature), cut by top-k or top-p

A prompt holding a blank "___" is filled rather than continued: the text before the blank primes the
model, and the fill ends where the text after the blank would begin (its first character), at the end
of a word, or at an --until string.

Memory does not grow with the length: `run` keeps per sequence its state, a block of uniforms and the
last few characters that --until needs, and hands every step's characters to a sink, which writes them
out (streams.Writer) or collects them (Collector, for blank fills and jsonl).

Randomness: sequence i of the whole input (counted over all prompts and samples, not the batch) draws
its uniforms from a generator seeded with seed + i. So a prompt's completion does not depend on which
other prompts share its batch, and a sample is reproduced alone by its prompt with seed + i as the seed.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from . import model, stepwise
from .vocab import encode_text, line_start
from .errors import DataError
from .workspace import Workspace

BLANK = "___"


@dataclass
class Options:
    length: int = 200  # most characters generated per sequence
    temperature: float = 1.0  # divides the logits; below 1 is more conservative
    top_k: int = 0  # sample among the k likeliest characters only; 0 = all
    top_p: float = 1.0  # sample among the likeliest characters holding this much probability
    greedy: bool = False  # always the likeliest character
    until: Sequence[str] = ()  # stop after the first occurrence of any of these (kept in the output)
    stop_at_newline: bool = False  # end at a newline (not kept): one completion per line
    lines: bool = False  # the model read every line from the zero state (data.mode lines): so does sampling
    unknown: str = "error"  # characters missing from the vocabulary: "error" or "skip"


@dataclass
class Result:
    prompt: str  # as given
    completion: str  # what the model wrote (the fill, for a blank)
    text: str  # the prompt continued, or with its blank filled
    logprob: float  # natural log-probability of the completion under the model (temperature 1)


@dataclass
class Request:
    prompt: str
    prefix: str  # what primes the model
    suffix: Optional[str]  # text after the blank; None when the prompt has no blank
    index: int  # position in the whole input: the sequence's random generator is seeded with seed + index


def parse(prompt, index=0):
    """Split a prompt at its blank, if it has one."""
    parts = prompt.split(BLANK)
    if len(parts) > 2:
        raise DataError(f"a prompt may hold one blank ({BLANK}), not {len(parts) - 1}: {prompt[:60]!r}")
    if len(parts) == 2:
        return Request(prompt, parts[0], parts[1], index)
    return Request(prompt, prompt, None, index)


def sample_seed(seed, request):
    """The seed of a request's random generator: that of the run plus its index in the whole input. The
    request alone (index 0) with this seed draws the same numbers."""
    return seed + request.index


def word_boundaries(vocab):
    """(V,) bool: characters that end a word, and so a blank's fill (see ends_word)."""
    return np.array([ends_word(c) for c in vocab.chars])


def ends_word(c):
    """Whether c ends a word: anything but letters, digits, apostrophe and hyphen."""
    return not (c.isalnum() or c in "'-")


def run(packed, vocab, requests, options, seed, sink, warn=None):
    """Advance a batch of requests together with the packed weights (model.pack) until every sequence is
    done; returns their log-probabilities (B,).

    Nothing is kept per generated character: after every step, sink.step(chosen, keep, done, logprob)
    sees the characters chosen (B,), which of them belong to their sequence's completion (B,) bool, which
    sequences are finished (B,) bool, and the log-probabilities so far (B,). A sequence keeps a prefix of
    the steps: its first unkept character ends it. The sink decides what to hold (see Collector,
    streams.Writer), so memory does not grow with options.length.
    """
    B = len(requests)
    if B == 0:
        return np.zeros(0)
    if not options.greedy and options.temperature <= 0:
        raise DataError("temperature must be positive (use --greedy for the likeliest characters)")
    prompts = [_encode_prefix(vocab, r, options.unknown, warn) for r in requests]
    n_new = options.length
    done = np.full(B, n_new == 0)
    logprob = np.zeros(B)
    uniforms = None if options.greedy else _Uniforms([sample_seed(seed, r) for r in requests], n_new)
    ends_before = _stop_table(vocab, requests, options)  # (B, V): this character ends sequence b unkept
    until = _Until(vocab, options.until, B, warn)

    work = Workspace()
    rows = np.arange(B)
    with np.errstate(over="ignore", divide="ignore"):  # a probability that underflows to 0: log -inf
        state, logits = stepwise.read(packed, prompts, work)  # every prompt read, side by side
        stepper = stepwise.Stepper(packed, state)
        restart = _LineStart(packed, vocab) if options.lines and "\n" in vocab.index else None
        # the loop runs once per generated character: a handful of NumPy calls besides the model's step
        for g in range(n_new):
            chosen, char_logp = _choose(logits, options, None if uniforms is None else uniforms.next())
            stop = done | ends_before[rows, chosen]  # finished before, or this character ends it unkept
            keep = ~stop
            np.add(logprob, char_logp, out=logprob, where=keep)
            # a sequence keeps every step until it stops, so the last step ends every one still going
            done = stop if g + 1 < n_new else np.ones(B, bool)
            reached = until.reached(chosen, keep) if until.patterns else None
            if reached is not None:
                done |= reached
            if g + 1 == n_new and warn is not None:  # still going when the length ran out
                _note_cut_blanks(requests, keep if reached is None else keep & ~reached, n_new, warn)
            sink.step(chosen, keep, done, logprob)
            if done.all():
                break
            logits = stepper.step(chosen)
            if restart is not None:
                restart.apply(chosen, state, logits)
    return logprob


def _note_cut_blanks(requests, cut, length, warn):
    """A note for the blanks whose fill the length cut short (cut (B,) bool): their text then holds a
    piece of a word before the text after the blank, which looks like a whole answer."""
    blanks = [r for r, c in zip(requests, cut) if c and r.suffix is not None]
    if blanks:
        more = f" and {len(blanks) - 1} more" if len(blanks) > 1 else ""
        warn(f"note: the fill of {blanks[0].prompt[:60]!r}{more} reached --length {length} before the blank's end "
             f"(a word boundary); it may be cut short: give a larger --length")


class _LineStart:
    """For a model trained on lines, each read from the zero state after a newline (data.mode lines): the
    state and next-character logits there, which replace a sequence's own once it writes a newline, so
    that its next line starts as every line of its training did (carrying the state on instead, such a
    model wrote short broken lines after the first)."""

    def __init__(self, packed, vocab):
        self.newline = vocab.index["\n"]
        self.state, self.logits = stepwise.read(packed, [np.array([self.newline])])

    def apply(self, chosen, state, logits):
        """Restart, in place, the rows of state (as stepwise.start makes it) and logits (B, V) whose
        chosen character (B,) was a newline."""
        rows = np.flatnonzero(chosen == self.newline)
        if len(rows) == 0:
            return
        stepwise.restart(state, rows, self.state)
        logits[rows] = self.logits[0]


class Collector:
    """A sink for `run` that holds each sequence's completion as text. The chosen ids of the last CHUNK
    steps sit in one (CHUNK, B) array, decoded per sequence when it fills, so a step costs two array
    writes, not a loop over the batch. A sequence keeps a prefix of the steps, so its characters in a
    chunk are the chunk's first rows. A dropped sequence's text is no longer held (streams.Writer drops
    the one it writes as it goes)."""

    CHUNK = 1024

    def __init__(self, vocab, B):
        self.vocab = vocab
        self.ids = np.zeros((self.CHUNK, B), np.intp)  # (CHUNK, B) the ids chosen at the chunk's steps
        self.row = 0  # rows of the chunk filled
        self.kept = np.zeros(B, np.intp)  # (B,) characters kept per sequence
        self.decoded = np.zeros(B, np.intp)  # (B,) of which already decoded into parts
        self.parts = [[] for _ in range(B)]  # decoded text, chunk by chunk
        self.dropped = np.zeros(B, bool)

    def step(self, chosen, keep, done=None, logprob=None):
        self.ids[self.row] = chosen
        self.kept += keep
        self.row += 1
        if self.row == self.CHUNK:
            for b in np.flatnonzero((self.kept > self.decoded) & ~self.dropped):
                self.parts[b].append(self._pending(b))
            self.decoded[:] = self.kept
            self.row = 0

    def _pending(self, b):
        return self.vocab.decode(self.ids[: self.kept[b] - self.decoded[b], b])

    def text(self, b):
        """Everything sequence b has kept so far."""
        return "".join(self.parts[b]) + self._pending(b)

    def drop(self, b):
        self.dropped[b] = True
        self.parts[b] = []


def generate(packed, vocab, requests, options, seed=0, warn=None):
    """Complete a batch of requests together; returns one Result per request, in order. Holds every
    completion: for blank fills and tests; `charlstm sample` streams through `complete` instead."""
    texts = Collector(vocab, len(requests))
    logprob = run(packed, vocab, requests, options, seed, texts, warn)
    return [result(r, texts.text(b), float(logprob[b])) for b, r in enumerate(requests)]


def result(request, completion, logprob):
    """The Result for a request completed with `completion`."""
    r = request
    text = r.prefix + completion + r.suffix if r.suffix is not None else r.prompt + completion
    return Result(r.prompt, completion, text, logprob)


class _Uniforms:
    """The uniforms that drive sampling: sequence b draws from its own generator, seeded with its seed
    (--seed plus its index in the whole input), CHUNK at a time. Each double takes one 64-bit output, so
    the numbers are those of a single long draw, and memory does not grow with the length."""

    CHUNK = 4096

    def __init__(self, seeds, length):
        self.generators = [np.random.default_rng(s) for s in seeds]
        self.length = length
        self.g = 0  # uniforms handed out per sequence
        self.block = None  # (n, B)

    def next(self):
        """(B,) one uniform per sequence, for the next step."""
        j = self.g % self.CHUNK
        if j == 0:
            n = min(self.CHUNK, self.length - self.g)
            self.block = np.empty((n, len(self.generators)))  # (n, B)
            for b, gen in enumerate(self.generators):
                self.block[:, b] = gen.random(n)
        self.g += 1
        return self.block[j]


class _Until:
    """Which sequences have just written one of the --until strings. Only the last W characters kept by
    each sequence are held (W the longest string), not the completion."""

    def __init__(self, vocab, strings, B, warn=None):
        self.patterns = []
        for u in filter(None, strings):
            if vocab.unknown(u):
                if warn is not None:
                    warn(f"warning: --until {u!r} holds characters the model never writes; it cannot stop anything")
            else:
                self.patterns.append(vocab.encode(u).astype(np.intp))
        W = max((len(p) for p in self.patterns), default=0)
        self.tail = np.full((B, W), -1, np.intp)  # (B, W) the last W ids kept, right-aligned; -1 before any

    def reached(self, chosen, keep):
        """Take this step's kept characters; (B,) bool: the sequences whose completion now ends with one
        of the strings."""
        self.tail[keep, :-1] = self.tail[keep, 1:]
        self.tail[keep, -1] = chosen[keep]
        W = self.tail.shape[1]
        hit = np.zeros(len(keep), bool)
        for p in self.patterns:
            hit |= (self.tail[:, W - len(p) :] == p).all(axis=1)
        return hit & keep


def _stop_table(vocab, requests, options):
    """(B, V) bool: generating this character ends the sequence and is not kept: for a blank, the first
    character of the text after it or any word boundary; with stop_at_newline, a newline."""
    table = np.zeros((len(requests), len(vocab)), bool)
    boundary = word_boundaries(vocab)
    for b, r in enumerate(requests):
        if r.suffix is not None:
            table[b] = boundary
            if r.suffix and r.suffix[0] in vocab.index:
                table[b, vocab.index[r.suffix[0]]] = True
    if options.stop_at_newline and "\n" in vocab.index:
        table[:, vocab.index["\n"]] = True
    return table


def _encode_prefix(vocab, request, unknown, warn):
    ids = encode_text(vocab, request.prefix, unknown, warn, where=repr(request.prompt[:40]))
    if len(ids) == 0 and "\n" not in vocab.index:
        raise DataError("an empty prompt needs a model whose vocabulary has a newline; give a prompt")
    return line_start(vocab, ids)


def _choose(logits, options, u):
    """The next character of each row of logits (B, V) and its log-probability under the model (at
    temperature 1, untruncated). Greedy takes the likeliest; otherwise temperature, top-k and top-p
    shape the distribution, which is sampled by inverting its cumulative sum at the uniforms u (B,)."""
    V = logits.shape[1]
    # the conditions under which every step below leaves p as exp(z): an option added below must be added here
    if len(logits) == 1 and not options.greedy and options.temperature == 1.0 and not 0 < options.top_k < V \
            and options.top_p >= 1.0:
        return _choose_one(logits[0], u[0])
    rows = np.arange(len(logits))
    z = logits - logits.max(axis=1, keepdims=True)  # (B, V), max 0
    p = np.exp(z)
    log_total = np.log(p.sum(axis=1))  # the model's own normaliser, for the log-probability
    if options.greedy:
        chosen = z.argmax(axis=1)
        return chosen, z[rows, chosen] - log_total
    if options.temperature != 1.0:
        p = np.exp(np.divide(z, options.temperature, dtype=np.float64))  # in float64: -t 1e-300 is 0 in float32
    if 0 < options.top_k < V:
        kth = np.partition(p, V - options.top_k, axis=1)[:, V - options.top_k][:, None]
        p[p < kth] = 0.0
    if options.top_p < 1.0:
        p /= p.sum(axis=1, keepdims=True)
        order = np.argsort(-p, axis=1)
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p  # probability of the likelier characters
        sorted_p[before >= options.top_p] = 0.0  # keeps the smallest set that reaches top_p
        np.put_along_axis(p, order, sorted_p, axis=1)
    cdf = np.add.accumulate(p, axis=1)  # np.cumsum without its Python wrapper: this runs once a character
    if len(cdf) == 1:  # one sequence: a binary search, the same choice as the comparison below
        chosen = np.minimum(cdf[0].searchsorted(u * cdf[0, -1]), V - 1)
    else:
        chosen = np.minimum((cdf < u[:, None] * cdf[:, -1:]).sum(axis=1), V - 1)
    return chosen, z[rows, chosen] - log_total


def _choose_one(logits, u):
    """`_choose` for one sequence at temperature 1, untruncated: the same choice and log-probability, as
    arrays (1,), each value computed by the same operation on the same numbers (for logits below +inf,
    as a decoder's and a pointer's are), in half its NumPy calls, which at batch 1 cost as much as the
    model's own elementwise work. logits (V,), u a scalar."""
    top = np.maximum.reduce(logits)  # logits.max() without its Python wrapper
    p = np.exp(logits - top)
    cdf = np.add.accumulate(p)
    chosen = min(int(cdf.searchsorted(u * cdf[-1])), len(logits) - 1)
    return np.array([chosen]), np.array([(logits[chosen] - top) - np.log(np.add.reduce(p))])  # scalars' dtype


def fill_blanks(params, vocab, prompts, batch=256, unknown="error", warn=None, spec=None):
    """Greedy fills for prompts that each hold one blank: the fill strings, in order. Prompts of similar
    length share a batch, so that little of a batch's reading is padding. spec: the architecture
    (model.Spec), read off the parameter names when not given."""
    options = Options(length=64, greedy=True, unknown=unknown)
    packed = model.pack(params, spec)
    requests = [parse(p, i) for i, p in enumerate(prompts)]
    for r in requests:
        if r.suffix is None:
            raise DataError(f"a cloze prompt must hold a blank ({BLANK}): {r.prompt[:60]!r}")
    order = sorted(range(len(requests)), key=lambda i: len(requests[i].prefix))
    fills = [None] * len(requests)
    for start in range(0, len(order), batch):
        chosen = order[start : start + batch]
        results = generate(packed, vocab, [requests[i] for i in chosen], options, warn=warn)
        for i, res in zip(chosen, results):
            fills[i] = res.completion
    return fills


def complete(params, vocab, prompt_batches, options, seed, num_samples=1, batch=64, writer=None, warn=None,
             spec=None):
    """Complete every prompt of every batch of prompts, num_samples times each, handing the samples to
    writer (see streams.Writer) as they are made; at most `batch` sequences advance together. Sample i of
    the whole input (prompts in order, a prompt's samples together) draws from a generator seeded with
    seed + i, whatever batch it is in. Returns the number of samples. spec: the architecture
    (model.Spec), read off the parameter names when not given."""
    packed = model.pack(params, spec)
    index = 0
    for prompts in prompt_batches:
        requests = [parse(p, index + k) for k, p in enumerate(p for p in prompts for _ in range(num_samples))]
        index += len(requests)
        for start in range(0, len(requests), batch):
            chunk = requests[start : start + batch]
            logprob = run(packed, vocab, chunk, options, seed, writer.start(chunk), warn)
            writer.finish(logprob)
    return index

"""Completing prompts and filling blanks, many sequences at once.

All sequences of a batch advance together, one character per step through `model.step`: a sequence
first reads its prompt (the model is primed character by character, from the zero state and a newline:
a prompt starts a line, see `data.line_start`), then samples, until its own stop condition; a sequence
that is done idles while the others finish. At step t, sequence b reads

    x_b = prompt_b[t]              while t < len(prompt_b)
    x_b = generated_b[t - len]     afterwards

and the logits that follow predict the character after x_b.

A prompt holding a blank "___" is filled rather than continued: the text before the blank primes the
model, and the fill ends where the text after the blank would begin (its first character), at the end
of a word, or at an --until string.

Randomness: sequence i (counted over the whole input, not the batch) draws its uniforms from a generator
seeded with (seed, i), so a prompt's completion does not depend on which other prompts share its batch.
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from . import model
from .data import encode_text, line_start
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
    index: int  # position in the whole input, for the per-sequence random generator


def parse(prompt, index=0):
    """Split a prompt at its blank, if it has one."""
    parts = prompt.split(BLANK)
    if len(parts) > 2:
        raise DataError(f"a prompt may hold one blank ({BLANK}), not {len(parts) - 1}: {prompt[:60]!r}")
    if len(parts) == 2:
        return Request(prompt, parts[0], parts[1], index)
    return Request(prompt, prompt, None, index)


def word_boundaries(vocab):
    """(V,) bool: characters that end a word (anything but letters, digits, apostrophe and hyphen)."""
    return np.array([not (c.isalnum() or c in "'-") for c in vocab.chars])


def generate(packed, vocab, requests, options, seed=0, on_step=None, warn=None):
    """Complete a batch of requests together with the packed weights (model.pack). Returns one Result
    per request, in order.

    on_step(text_from, done), if given, is called after every generated character with a function
    (b, start) -> the completion of sequence b from character `start`, and the (B,) bool array of
    finished sequences: what a live display needs, without decoding everything every step.
    """
    B = len(requests)
    if B == 0:
        return []
    if not options.greedy and options.temperature <= 0:
        raise DataError("temperature must be positive (use --greedy for the likeliest characters)")
    prompts = [_encode_prefix(vocab, r, options.unknown, warn) for r in requests]
    n_new = options.length
    out = np.zeros((B, max(n_new, 1)), np.intp)  # (B, n_new) generated ids
    n_out = np.zeros(B, np.intp)  # (B,) characters kept per sequence
    done = np.full(B, n_new == 0)
    logprob = np.zeros(B)
    uniforms = None if options.greedy else np.stack(  # (B, n_new), one generator per sequence
        [np.random.default_rng([seed, r.index]).random(max(n_new, 1)) for r in requests])
    ends_before = _stop_table(vocab, requests, options)  # (B, V): this character ends sequence b unkept
    until = []
    for u in filter(None, options.until):
        if vocab.unknown(u):
            if warn is not None:
                warn(f"warning: --until {u!r} holds characters the model never writes; it cannot stop anything")
        else:
            until.append(vocab.encode(u))

    state = model.zero_state(packed["spec"], B, packed["table"].dtype)
    work = Workspace()
    rows = np.arange(B)
    with np.errstate(over="ignore", divide="ignore"):  # see model.step
        logits = _prime(packed, prompts, state, work)
        for g in range(n_new):
            chosen, char_logp = _choose(logits, options, None if uniforms is None else uniforms[:, g])
            ending = ends_before[rows, chosen]
            keep = ~(done | ending)
            out[:, g] = chosen
            n_out += keep
            logprob += np.where(keep, char_logp, 0.0)
            done |= ending | (n_out >= n_new)
            if until:
                for b in np.flatnonzero(keep & ~done):
                    done[b] = _ends_with_any(out[b, : n_out[b]], until)
            if on_step is not None:
                on_step(lambda b, start: vocab.decode(out[b, start : n_out[b]]), done)
            if done.all():
                break
            logits = model.step(packed, chosen, state, work)

    results = []
    for b, r in enumerate(requests):
        completion = vocab.decode(out[b, : n_out[b]])
        text = r.prefix + completion + r.suffix if r.suffix is not None else r.prompt + completion
        results.append(Result(r.prompt, completion, text, float(logprob[b])))
    return results


def _prime(packed, prompts, state, work):
    """Feed every prompt, right-aligned so that all end on the same step: a shorter prompt starts later,
    its state held at zero until then. Returns the logits after the last prompt character."""
    longest = max(len(p) for p in prompts)
    aligned = np.zeros((len(prompts), longest), np.intp)  # (B, longest)
    for b, p in enumerate(prompts):
        aligned[b, longest - len(p) :] = p
    starts = longest - np.array([len(p) for p in prompts])  # (B,) first step of each prompt
    for t in range(longest):
        logits = model.step(packed, aligned[:, t], state, work)
        waiting = t < starts
        if waiting.any():
            for s in state:
                s[:, waiting] = 0
    return logits


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


def _ends_with_any(ids, patterns):
    return any(len(ids) >= len(p) and np.array_equal(ids[len(ids) - len(p):], p) for p in patterns)


def _choose(logits, options, u):
    """The next character of each row of logits (B, V) and its log-probability under the model (at
    temperature 1, untruncated). Greedy takes the likeliest; otherwise temperature, top-k and top-p
    shape the distribution, which is sampled by inverting its cumulative sum at the uniforms u (B,)."""
    rows = np.arange(len(logits))
    z = logits - logits.max(axis=1, keepdims=True)  # (B, V), max 0
    p = np.exp(z)
    log_total = np.log(p.sum(axis=1))  # the model's own normaliser, for the log-probability
    if options.greedy:
        chosen = z.argmax(axis=1)
        return chosen, z[rows, chosen] - log_total
    V = z.shape[1]
    if options.temperature != 1.0:
        p = np.exp(z / options.temperature)  # the distribution sampled from
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
    cdf = np.cumsum(p, axis=1)
    chosen = np.minimum((cdf < u[:, None] * cdf[:, -1:]).sum(axis=1), V - 1)
    return chosen, z[rows, chosen] - log_total


def fill_blanks(params, vocab, prompts, batch=256, unknown="error", warn=None):
    """Greedy fills for prompts that each hold one blank: the fill strings, in order."""
    options = Options(length=64, greedy=True, unknown=unknown)
    packed = model.pack(params)
    fills = []
    for start in range(0, len(prompts), batch):
        requests = [parse(p, start + i) for i, p in enumerate(prompts[start : start + batch])]
        for r in requests:
            if r.suffix is None:
                raise DataError(f"a cloze prompt must hold a blank ({BLANK}): {r.prompt[:60]!r}")
        fills += [res.completion for res in generate(packed, vocab, requests, options, warn=warn)]
    return fills


def complete(params, vocab, prompt_batches, options, seed, num_samples=1, writer=None, warn=None):
    """Complete every prompt of every batch, num_samples times each: the samples of a batch advance
    together, and sequence i of the whole input draws from generator (seed, i). Each finished batch is
    handed to writer (see streams.Writer) before the next is read. Yields the results of each batch."""
    packed = model.pack(params)
    index = 0
    for prompts in prompt_batches:
        requests = []
        for prompt in prompts:
            for _ in range(num_samples):
                requests.append(parse(prompt, index))
                index += 1
        on_step = writer.batch(requests) if writer is not None else None
        results = generate(packed, vocab, requests, options, seed, on_step=on_step, warn=warn)
        if writer is not None:
            writer.results(results, seed)
        yield results

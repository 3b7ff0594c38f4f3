"""Completing prompts and filling blanks, many sequences at once.

All sequences of a batch advance together, one character per step through `model.step`: a sequence
first reads its prompt (the model is primed character by character), then samples, until its own stop
condition; a sequence that is done idles while the others finish. At step t, sequence b reads

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


def generate(params, vocab, requests, options, seed=0, on_step=None, warn=None):
    """Complete a batch of requests together. Returns one Result per request, in order.

    on_step(completion_so_far, done), if given, is called after every step with a function b -> the
    completion of sequence b so far, and the (B,) bool array of finished sequences: used to stream output.
    """
    packed = model.pack(params) if "spec" not in params else params
    spec = packed["spec"]
    B = len(requests)
    if B == 0:
        return []
    if not options.greedy and options.temperature <= 0:
        raise DataError("temperature must be positive (use --greedy for the likeliest characters)")

    prompts = [_encode_prefix(vocab, r, options.unknown, warn) for r in requests]
    P = np.array([len(p) for p in prompts])  # (B,)
    forced = np.zeros((B, max(P.max(), 1)), np.intp)
    for b, p in enumerate(prompts):
        forced[b, : len(p)] = p
    L_new = options.length
    out = np.zeros((B, max(L_new, 1)), np.intp)  # generated ids
    n_out = np.zeros(B, np.intp)  # characters kept per sequence
    done = np.full(B, L_new == 0)
    logprob = np.zeros(B)
    uniforms = np.stack([np.random.default_rng([seed, r.index]).random(max(L_new, 1)) for r in requests])
    stop_first = _blank_stops(vocab, requests)  # (B,) id that ends a fill, -1 if none
    is_blank = np.array([r.suffix is not None for r in requests])
    boundary = word_boundaries(vocab)
    newline = vocab.index.get("\n", -1) if options.stop_at_newline else -1
    until = [vocab.encode(u, unknown="skip") for u in options.until if u and not vocab.unknown(u)]

    state = model.zero_state(spec, B, packed["table"].dtype)
    work = Workspace()
    rows = np.arange(B)
    t = 0
    while not done.all():
        g_in = t - P  # (B,) index into out of the character read now, negative while reading the prompt
        x = np.where(g_in < 0, forced[rows, np.minimum(t, forced.shape[1] - 1)], out[rows, np.maximum(g_in, 0)])
        logits = model.step(packed, x, state, work).astype(np.float64)
        g = t + 1 - P  # index of the character these logits predict
        active = (g >= 0) & ~done
        if active.any():
            chosen = _choose(logits, options, uniforms[rows, np.minimum(np.maximum(g, 0), L_new - 1)])
            logz = np.log(np.exp(logits - logits.max(axis=1, keepdims=True)).sum(axis=1)) + logits.max(axis=1)
            char_logp = logits[rows, chosen] - logz
            # a character that ends a fill or a line is not part of the completion
            ends_before = (is_blank & ((chosen == stop_first) | boundary[chosen])) | (chosen == newline)
            keep = active & ~ends_before
            out[rows[keep], g[keep]] = chosen[keep]
            n_out[keep] += 1
            logprob[keep] += char_logp[keep]
            finished = (active & ends_before) | (keep & (n_out >= L_new))
            for b in np.flatnonzero(keep & ~finished):
                if _ends_with_any(out[b, : n_out[b]], until):
                    finished[b] = True
            done |= finished
        t += 1
        if on_step is not None:
            on_step(lambda b: vocab.decode(out[b, : n_out[b]]), done)

    results = []
    for b, r in enumerate(requests):
        completion = vocab.decode(out[b, : n_out[b]])
        text = r.prefix + completion + r.suffix if r.suffix is not None else r.prompt + completion
        results.append(Result(r.prompt, completion, text, float(logprob[b])))
    return results


def _encode_prefix(vocab, request, unknown, warn):
    prefix = request.prefix
    missing = vocab.unknown(prefix)
    if missing:
        from .data import describe_chars

        if unknown != "skip":
            raise DataError(f"characters not in the model's vocabulary: {describe_chars(missing)} "
                            f"(in {request.prompt[:40]!r}; --unknown skip drops them)")
        if warn is not None:
            warn(f"warning: dropped characters not in the vocabulary: {describe_chars(missing)}")
    ids = vocab.encode(prefix, unknown="skip")
    if len(ids) == 0:  # nothing to prime with: start as if at the beginning of a line
        if "\n" not in vocab.index:
            raise DataError("an empty prompt needs a model whose vocabulary has a newline; give a prompt")
        ids = np.array([vocab.index["\n"]])
    return ids


def _blank_stops(vocab, requests):
    stops = np.full(len(requests), -1)
    for b, r in enumerate(requests):
        if r.suffix:
            stops[b] = vocab.index.get(r.suffix[0], -1)
    return stops


def _ends_with_any(ids, patterns):
    return any(len(ids) >= len(p) and np.array_equal(ids[len(ids) - len(p):], p) for p in patterns)


def _choose(logits, options, u):
    """Next character per row of logits (B, V): greedy, or sampled with temperature, top-k and top-p
    by inverting the cumulative distribution at the uniforms u (B,)."""
    if options.greedy:
        return logits.argmax(axis=1)
    z = logits / options.temperature
    V = z.shape[1]
    if 0 < options.top_k < V:
        kth = np.partition(z, V - options.top_k, axis=1)[:, V - options.top_k][:, None]
        z = np.where(z >= kth, z, -np.inf)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if options.top_p < 1.0:
        order = np.argsort(-p, axis=1)
        sorted_p = np.take_along_axis(p, order, axis=1)
        before = np.cumsum(sorted_p, axis=1) - sorted_p  # probability of the likelier characters
        sorted_p[before >= options.top_p] = 0.0  # keeps the smallest set that reaches top_p
        np.put_along_axis(p, order, sorted_p, axis=1)
    cdf = np.cumsum(p, axis=1)
    return np.minimum((cdf < u[:, None] * cdf[:, -1:]).sum(axis=1), V - 1)


def fill_blanks(params, vocab, prompts, batch=256, unknown="error", warn=None):
    """Greedy fills for prompts that each hold one blank: the fill strings, in order."""
    options = Options(length=64, greedy=True, unknown=unknown)
    fills = []
    for start in range(0, len(prompts), batch):
        requests = [parse(p, start + i) for i, p in enumerate(prompts[start : start + batch])]
        for r in requests:
            if r.suffix is None:
                raise DataError(f"a cloze prompt must hold a blank ({BLANK}): {r.prompt[:60]!r}")
        fills += [res.completion for res in generate(params, vocab, requests, options, warn=warn)]
    return fills

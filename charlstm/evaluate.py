"""Scoring text: cross-entropy with full context, and fill-in-the-blank accuracy.

The definition used everywhere (validation during training, `charlstm eval`), so that anyone can check it:
for a text x_0 .. x_{N-1}, the state starts at zero and is carried through the whole text, and the score
is the mean over t = 1 .. N-1 of -log p(x_t | x_0 .. x_{t-1}), in nats per character. Several texts run
as parallel streams; their scored characters are pooled.
"""

import math

import numpy as np

from . import model
from .data import Window
from .reading import decode, expand_sources, read_bytes, read_text
from .vocab import encode_text
from .errors import DataError
from .heldout import line_streams
from .sample import ends_word, fill_blanks
from .workspace import Workspace


def score(params, streams, window=256, work=None, group=64, on_scored=None, spec=None):
    """Total negative log-likelihood (nats) and the number of characters scored, over the id arrays in
    `streams`, each from the zero state. Streams run in groups of at most `group` side by side, streams
    of similar length together; each window of a group is cut from the streams as it is needed.
    on_scored(n), if given, is called with the characters scored by each window (for a progress bar).
    spec: the architecture (model.Spec), read off the parameter names when not given."""
    totals, counts = score_each(params, streams, window, work, group, on_scored, spec)
    return float(totals.sum()), int(counts.sum())


def score_each(params, streams, window=256, work=None, group=64, on_scored=None, spec=None):
    """`score`, stream by stream: (nats (S,), characters scored (S,)) in the order of `streams`."""
    work = Workspace() if work is None else work
    packed = model.pack(params, spec)
    dtype = params["decoder.weight"].dtype

    def forward(win, state):
        state = model.zero_state(packed.spec, win.x.shape[1], dtype) if state is None else state
        _, state, cache = model.forward(params, win, state, work, packed=packed)
        return cache.stream_nll, state

    return score_streams(forward, streams, window, group, on_scored, dtype)


def score_with(forward, streams, window=256, group=64, on_scored=None, dtype=np.float32):
    """`score` with the model's forward pass given, so that every engine scores by one definition (the
    torch engine validates through it): forward(data.Window, state, None for the zero state) -> (each
    stream's summed -log p over the window's mask, (B,) float64, and the state to carry). The masks are
    of dtype."""
    totals, counts = score_streams(forward, streams, window, group, on_scored, dtype)
    return float(totals.sum()), int(counts.sum())


def score_streams(forward, streams, window=256, group=64, on_scored=None, dtype=np.float32):
    """`score_with`, stream by stream, in the order of `streams` (a stream shorter than two characters
    scores nothing)."""
    totals, counts = np.zeros(len(streams)), np.zeros(len(streams), np.int64)
    order = sorted((i for i, s in enumerate(streams) if len(s) >= 2), key=lambda i: len(streams[i]))
    for g in range(0, len(order), group):
        members = order[g : g + group]
        totals[members] = _score_group(forward, [streams[i] for i in members], window, on_scored, dtype)
        counts[members] = [len(streams[i]) - 1 for i in members]
    return totals, counts


def _score_group(forward, streams, window, on_scored, dtype):
    """Each stream's total nats, (B,), the streams side by side from the zero state."""
    B = len(streams)
    lengths = np.array([len(s) - 1 for s in streams])  # (B,) characters scored per stream
    state = None
    totals = np.zeros(B)
    for start in range(0, int(lengths.max()), window):
        T = min(window, int(lengths.max()) - start)
        x = np.zeros((T, B), np.intp)  # padding reads character 0; its targets are masked out
        y = np.zeros((T, B), np.intp)
        for b, s in enumerate(streams):
            piece = s[start : start + T + 1]
            if len(piece) > 1:  # a shorter stream may have ended already
                x[: len(piece) - 1, b] = piece[:-1]
                y[: len(piece) - 1, b] = piece[1:]
        mask = (start + np.arange(T)[:, None] < lengths[None, :]).astype(dtype)  # (T, B)
        nats, state = forward(Window(x, y, mask), state)
        totals += nats
        if on_scored is not None:
            on_scored(int(mask.sum()))
    return totals


def score_files(params, vocab, files, encoding="utf-8", unknown="error", warn=None, window=256, progress=None,
                spec=None, errors="strict", lines=False):
    """`charlstm eval FILES`: every file (or directory of files, or - for stdin) one stream from the zero
    state, or with lines=True (a model trained with data.mode lines) every line of it (heldout.line_streams);
    returns the metrics dict of all the characters pooled, with "files": the metrics of each file (their
    figures None where a file has nothing to score). progress(total), if given, is called with the number
    of characters to score once the files are read, and returns a progress bar (an object with update(n)
    and close(), such as a tqdm bar) or None."""
    streams, owner, names = [], [], []
    for f in expand_sources(files, warn):
        text, _ = read_text([f], encoding, errors)
        ids = encode_text(vocab, text, unknown, warn, where="stdin" if f == "-" else f)
        found = text_streams(ids, vocab, lines)
        streams += found
        owner += [len(names)] * len(found)
        names.append("-" if f == "-" else str(f))
    bar = progress(sum(max(len(s) - 1, 0) for s in streams)) if progress is not None else None
    try:
        totals, counts = score_each(params, streams, window, on_scored=bar.update if bar is not None else None,
                                    spec=spec)
    finally:
        if bar is not None:
            bar.close()
    if counts.sum() == 0:
        shown = ", ".join("stdin" if n == "-" else n for n in names[:3]) + (", ..." if len(names) > 3 else "")
        raise DataError(f"nothing to score in {shown}: each text needs at least two characters")
    owner = np.array(owner, np.intp)
    each = []
    for j, name in enumerate(names):
        mine = owner == j
        count = int(counts[mine].sum())
        figures = metrics(float(totals[mine].sum()), count)
        each.append({"file": name, **({k: (v if count else None) for k, v in figures.items()} | {"chars": count})})
    return {**metrics(float(totals.sum()), int(counts.sum())), "files": each}


def text_streams(ids, vocab, lines=False):
    """How a text is scored: one stream from the zero state, or for a model trained on lines (lines=True)
    each of its lines (heldout.line_streams)."""
    return line_streams(ids, vocab.index["\n"]) if lines and "\n" in vocab.index else [ids]


def report_lines(report):
    """The text report of `charlstm eval`: the figures, or with several files a table of each file's and
    of all of them pooled."""
    lines = []
    files = report.get("files", [])
    if len(files) > 1:
        width = max(len("file"), *(len(f["file"]) for f in files))
        lines.append(f"{'file':<{width}}  {'chars':>10}  {'nats/char':>9}  {'bits/char':>9}  {'perplexity':>12}")
        for name, f in [(f["file"], f) for f in files] + [("all", report)]:
            if f["nats_per_char"] is None:
                lines.append(f"{name:<{width}}  {f['chars']:>10,}  {'-':>9}  {'-':>9}  {'-':>12}")
            else:
                lines.append(f"{name:<{width}}  {f['chars']:>10,}  {f['nats_per_char']:>9.4f}  "
                             f"{f['bits_per_char']:>9.4f}  {f['perplexity']:>12.4f}")
    elif "chars" in report:
        lines += [f"chars        {report['chars']:,}", f"nats/char    {report['nats_per_char']:.4f}",
                  f"bits/char    {report['bits_per_char']:.4f}", f"perplexity   {report['perplexity']:.4f}"]
    if "accuracy" in report:
        right = round(report["accuracy"] * report["n"])
        lines.append(f"cloze accuracy {report['accuracy']:.4f} ({right}/{report['n']})")
    return lines


def metrics(total_nll, count):
    """The figures `charlstm eval` reports, from a total in nats and the characters scored."""
    nats = total_nll / count if count else float("nan")
    return {"chars": count, "nats_per_char": nats, "bits_per_char": nats / math.log(2),
            "perplexity": math.exp(nats) if count else float("nan")}


def read_cloze(path, encoding="utf-8", errors="strict"):
    """PROMPT<TAB>ANSWER lines -> (prompts, answers). Blank lines are skipped; anything else malformed
    is a DataError naming the line."""
    text = decode(read_bytes(path), "stdin" if path == "-" else path, encoding, errors)
    prompts, answers = [], []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or "___" not in parts[0]:
            raise DataError(f"{path} line {n}: expected PROMPT<TAB>ANSWER with ___ in the prompt")
        prompt, answer = parts[0], parts[1].strip()
        if prompt.count("___") > 1:
            raise DataError(f"{path} line {n}: a prompt may hold one blank (___), not {prompt.count('___')}")
        stops = sorted({c for c in answer if ends_word(c)})
        if not answer or stops:  # a fill ends at the first such character: this answer could never match
            raise DataError(f"{path} line {n}: the answer {answer!r} " + (
                f"holds {' '.join(map(repr, stops))}, where a fill ends (a fill is one word: letters, digits, ' and -)"
                if stops else "is empty"))
        prompts.append(prompt)
        answers.append(answer)
    if not prompts:
        raise DataError(f"{path} holds no cloze lines")
    return prompts, answers


def cloze(params, vocab, prompts, answers, unknown="error", warn=None, spec=None):
    """Exact-match accuracy of greedy blank filling: (accuracy, n, the model's fills)."""
    fills = fill_blanks(params, vocab, prompts, unknown=unknown, warn=warn, spec=spec)
    correct = sum(f == a for f, a in zip(fills, answers))
    return correct / len(prompts), len(prompts), fills

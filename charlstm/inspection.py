"""Looking inside a model: what it expects, what its gates do and what its memory holds, per character.

`trace` runs a text through the model from the zero state, one character at a time with the same step
code as sampling, and records for every character:
    surprisal   -log2 p(x_t | x_0..x_{t-1}) in bits (for the first character: after the newline that `run`
                reads first, as sampling does; undefined if nothing was read before it)
    gates       the mean over units of each gate the cell names (its GATE_BLOCKS), per layer, after
                reading x_t
    cell        every unit's memory, per layer, for a cell whose memory is not its output (an LSTM's c_t)
    hidden      every unit's output h_t, per layer
    copy        for a model with a pointer (pointer.py): the pointer's share of the prediction of x_t, the
                part copied from what followed earlier characters rather than said by the decoder

`render_terminal` and `render_html` colour the text by one or more of these quantities.
"""

import html
import json
import math
import pathlib
import re
import shutil
import unicodedata

import numpy as np

from . import model, stepwise
from .cells import CELLS
from .vocab import encode_text, line_start
from .errors import DataError

def run(ckpt, text, unknown="error", warn=None):
    """(the text as the model reads it, trace) for a checkpoint: characters missing from its vocabulary
    are an error, or dropped with a warning."""
    ids = encode_text(ckpt.vocab, text, unknown, warn)
    if len(ids) == 0:
        raise DataError("nothing to inspect: the text is empty")
    read = line_start(ckpt.vocab, ids)  # the text starts a line, as a prompt does (see vocab.line_start)
    lines = ckpt.config.data.mode == "lines" and "\n" in ckpt.vocab.index
    return ckpt.vocab.decode(ids), trace(ckpt.params, ids, lead=read[: len(read) - len(ids)], spec=ckpt.spec,
                                         line_start_id=ckpt.vocab.index["\n"] if lines else None)


def trace(params, ids, lead=(), spec=None, line_start_id=None):
    """Run ids (N,) through the model after the characters lead, which are read but not recorded; returns
    a dict of arrays with one row per character of ids (see the module docstring). spec: the
    architecture (model.Spec), read off the parameter names when not given. line_start_id: for a model
    trained on lines (data.mode lines), its newline's id: each newline of the text is then read from
    the zero state (its pointer's memory emptied), as training, sampling and eval read every line;
    carried across, the state after one story made the next one look unlike anything it was trained on.
    The newline's own surprisal is still the previous line's prediction of its end."""
    packed = model.pack(params, spec)
    spec = packed.spec
    cell = CELLS[spec.cell]
    N, L, H = len(ids), spec.layers, spec.hidden
    blocks = cell.GATE_BLOCKS
    memory = cell.STATE.index(cell.MEMORY)  # 0: the memory is the output h, recorded as "hidden"
    out = {"surprisal": np.full(N, np.nan), "hidden": np.zeros((N, L, H), np.float32),
           "gates": {name: np.zeros((N, L)) for name in blocks}}
    if memory:
        out["cell"] = np.zeros((N, L, H), np.float32)
    if spec.pointer:
        out["copy"] = np.full(N, np.nan)
    state = stepwise.start(spec, 1, packed.table.dtype)
    stepper = stepwise.Stepper(packed, state)

    def record(t, k, activations, h):
        for name, block in blocks.items():
            out["gates"][name][t, k] = activations[0, block * H : (block + 1) * H].mean()
        out["hidden"][t, k] = h[0]
        if "cell" in out:
            out["cell"][t, k] = state[memory][k, 0]

    with np.errstate(over="ignore"):
        for x in lead:
            logits = stepper.step(np.array([x]))
        if len(lead):
            out["surprisal"][0] = _bits(logits[0], ids[0])
            if spec.pointer:
                out["copy"][0] = state[-1].share[0]
        fresh = stepwise.start(spec, 1, packed.table.dtype)  # the zero state, an empty memory
        for t, x in enumerate(ids):
            if x == line_start_id:
                stepwise.restart(state, np.arange(1), fresh)
            logits = stepper.step(np.array([x]), on_layer=lambda k, activations, h: record(t, k, activations, h))
            if t + 1 < N:
                out["surprisal"][t + 1] = _bits(logits[0], ids[t + 1])
                if spec.pointer:
                    out["copy"][t + 1] = state[-1].share[0]
    return out


def _bits(logits, x):
    """-log2 of the probability the logits (V,) give character x."""
    z = logits.astype(np.float64)
    z -= z.max()
    return (math.log(np.exp(z).sum()) - z[x]) / math.log(2)


def quantities(traced, spec, show, top, at=None):
    """The rows to draw: a list of (label, values (N,), kind), kind "bits", "gate" or "signed". top: also
    the units whose memory varies most over the text, or with at=(text, word) the units whose memory
    moves most while the word's first occurrence is read: the units that take a name in."""
    rows = []
    for item in show:
        if item == "surprisal":
            rows.append(("surprisal (bits)", traced["surprisal"], "bits"))
        elif item == "copy" and "copy" in traced:
            rows.append(("copy: the pointer's share of the prediction", traced["copy"], "gate"))
        elif item in traced["gates"]:
            for k in range(spec.layers):
                rows.append((f"{item} gate, layer {k} (mean over {spec.hidden} units)", traced["gates"][item][:, k],
                             "gate"))
        elif item.startswith(("cell:", "hidden:")):
            what, layer, unit = _parse_unit(item, spec)
            if what == "cell" and "cell" not in traced:
                raise DataError(f"a {spec.cell} has no cell state; try hidden:{layer}:{unit}")
            rows.append((f"{what} state, layer {layer} unit {unit}", traced[what][:, layer, unit], "signed"))
        else:
            choices = ["surprisal", *traced["gates"], "copy" if "copy" in traced else None, "cell:LAYER:UNIT" if "cell" in traced else None,
                       "hidden:LAYER:UNIT"]
            raise DataError(f"cannot show {item!r}; choose from {', '.join(c for c in choices if c)}")
    if top:
        what = "cell" if "cell" in traced else "hidden"
        values = traced[what].reshape(len(traced["surprisal"]), -1)  # (N, L·H)
        if at is None:
            score, why = values.std(axis=0), "varies most: {:.2f} std"
        else:
            start, end = _span(*at)
            before = values[start - 1] if start else np.zeros_like(values[0])  # the zero state before the text
            score, why = np.abs(values[end - 1] - before), f"moves most reading {at[1]!r}: {{:.2f}}"
        for j in np.argsort(-score, kind="stable")[:top]:
            layer, unit = divmod(int(j), spec.hidden)
            rows.append((f"{what} state, layer {layer} unit {unit} ({why.format(score[j])})", values[:, j], "signed"))
    return rows


def _span(text, word):
    """[start, end) of the word's first occurrence in the text, as a whole word where there is one."""
    found = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) or re.search(re.escape(word), text)
    if not word or found is None:
        raise DataError(f"--at {word!r}: not in the text")
    return found.start(), found.end()


def _parse_unit(item, spec):
    parts = item.split(":")
    try:
        what, layer, unit = parts[0], int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        raise DataError(f"{item!r}: write {parts[0]}:LAYER:UNIT, e.g. {parts[0]}:0:17") from None
    if not (0 <= layer < spec.layers and 0 <= unit < spec.hidden):
        raise DataError(f"{item!r}: the model has layers 0..{spec.layers - 1} and units 0..{spec.hidden - 1}")
    return what, layer, unit


# ------------------------------------------------------------------------------------------------ colour


def scale(values, kind):
    """(low, high) of the colour scale: bits from 0, gates on [0, 1], signed values symmetric about 0."""
    finite = values[np.isfinite(values)]
    if kind == "gate":
        return 0.0, 1.0
    if kind == "bits":
        return 0.0, max(1.0, float(finite.max()) if finite.size else 1.0)
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    return -max(bound, 1e-6), max(bound, 1e-6)


def colour(value, low, high, kind):
    """RGB for a value: white -> red for bits and gates, blue -> white -> red for signed values."""
    if not math.isfinite(value):
        return (200, 200, 200)
    u = min(1.0, max(0.0, (value - low) / (high - low)))
    if kind == "signed":
        if u < 0.5:
            a = 1 - 2 * u  # blue strength
            return (int(255 - 200 * a), int(255 - 150 * a), 255)
        a = 2 * u - 1
        return (255, int(255 - 180 * a), int(255 - 200 * a))
    return (255, int(255 - 200 * u), int(255 - 220 * u))


def _ansi_bg(rgb, truecolor):
    r, g, b = rgb
    if truecolor:
        return f"\x1b[48;2;{r};{g};{b}m"
    idx = 16 + 36 * round(r / 255 * 5) + 6 * round(g / 255 * 5) + round(b / 255 * 5)  # the 6x6x6 cube
    return f"\x1b[48;5;{idx}m"


def _visible(ch):
    """How a character is drawn: newline and tab as symbols, other control characters as a dot."""
    if ch == "\n":
        return "↵"
    if ch == "\t":
        return "→"
    if ord(ch) < 32 or ord(ch) == 127:
        return "·"
    if unicodedata.combining(ch):
        return "◌" + ch  # on a dotted circle: a column of its own, as under its bar
    return ch


def _columns(shown):
    """Terminal columns a drawn character takes: 2 for wide (CJK, east_asian_width W or F), else 1 (a
    combining mark is drawn on a dotted circle)."""
    return 2 if unicodedata.east_asian_width(shown[0]) in "WF" else 1


def _wrapped(shown, width):
    """Ranges of character indices, each filling at most `width` terminal columns."""
    start, used = 0, 0
    for i, s in enumerate(shown):
        w = _columns(s)
        if used + w > width and i > start:
            yield range(start, i)
            start, used = i, 0
        used += w
    if start < len(shown):
        yield range(start, len(shown))


BLOCKS = " ▁▂▃▄▅▆▇█"


def render_terminal(text, rows, colour_mode="ansi256", width=None):
    """Lines to print: for every row a header, then the text wrapped to `width`, each character on the
    background colour of its value; with colour_mode "none", a bar of block characters under each line
    instead. Colours are reset at every line end, so wrapping never smears them."""
    width = width or max(20, shutil.get_terminal_size((100, 24)).columns)
    shown = [_visible(c) for c in text]
    lines = []
    for label, values, kind in rows:
        low, high = scale(values, kind)
        lines.append(f"{label}  {legend(low, high, kind, colour_mode)}")
        for chunk in _wrapped(shown, width):  # by terminal columns: a wide character takes two
            if colour_mode == "none":
                lines.append("".join(shown[i] for i in chunk))
                lines.append("".join(_block(values[i], low, high) * _columns(shown[i]) for i in chunk))
            else:
                truecolor = colour_mode == "truecolor"
                lines.append("".join(_ansi_bg(colour(values[i], low, high, kind), truecolor) + "\x1b[30m" + shown[i]
                                     for i in chunk) + "\x1b[0m")
        lines.append("")
    return lines


def _block(value, low, high):
    if not math.isfinite(value):
        return " "
    u = min(1.0, max(0.0, (value - low) / (high - low)))
    return BLOCKS[1 + round(u * (len(BLOCKS) - 2))]


def legend(low, high, kind, colour_mode):
    """The scale in one line: five swatches (or block characters) with their values."""
    marks = np.linspace(low, high, 5)
    unit = {"bits": " bits", "gate": "", "signed": ""}[kind]
    if colour_mode == "none":
        return "scale: " + "  ".join(f"{_block(v, low, high)}={v:.2g}" for v in marks) + unit
    truecolor = colour_mode == "truecolor"
    return "scale: " + " ".join(f"{_ansi_bg(colour(v, low, high, kind), truecolor)}  \x1b[0m {v:.2g}"
                                for v in marks) + unit


# -------------------------------------------------------------------------------------------------- HTML


def write_html(path, text, rows, title="charlstm inspect"):
    try:
        pathlib.Path(path).write_text(render_html(text, rows, title), encoding="utf-8")
    except OSError as e:
        raise DataError(f"cannot write {path}: {e.strerror}") from None


def render_html(text, rows, title="charlstm inspect"):
    """One self-contained page: the text coloured by the quantity chosen in a selector, the value of the
    character under the pointer, and a legend. No external scripts, fonts or styles."""
    data = []
    for label, values, kind in rows:  # the page colours them with the same function as `colour`
        low, high = scale(values, kind)
        data.append({"label": label, "low": low, "high": high, "kind": kind,
                     "values": [None if not math.isfinite(v) else round(float(v), 4) for v in values]})
    spans = "".join(f'<span data-i="{i}">{html.escape(_visible(c))}</span>' + ("<br>" if c == "\n" else "")
                    for i, c in enumerate(text))
    options = "".join(f'<option value="{j}">{html.escape(r["label"])}</option>' for j, r in enumerate(data))
    # the characters as a list: JavaScript strings count UTF-16 units, so an emoji would shift indexes
    payload = json.dumps({"chars": list(text), "rows": data}).replace("</", "<\\/")
    return PAGE.format(title=html.escape(title), options=options, spans=spans, payload=payload)


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
#text {{ font-family: ui-monospace, monospace; font-size: 18px; line-height: 1.9; white-space: pre-wrap;
        word-break: break-all; max-width: 70em; }}
#text span {{ padding: 2px 0; }}
#legend {{ display: flex; align-items: center; gap: 6px; margin: 1em 0; font-size: 14px; }}
#bar {{ width: 320px; height: 14px; border: 1px solid #999; }}
#info {{ font-family: ui-monospace, monospace; min-height: 1.5em; margin: 0.5em 0; }}
select {{ font-size: 15px; }}
</style></head><body>
<h1>{title}</h1>
<label for="quantity">Colour by</label> <select id="quantity">{options}</select>
<div id="legend"><span id="low"></span><div id="bar"></div><span id="high"></span><span id="unit"></span></div>
<div id="info">Point at a character to see its value.</div>
<div id="text">{spans}</div>
<script>
const DATA = {payload};
const spans = document.querySelectorAll("#text span");
const select = document.getElementById("quantity");
function colour(v, row) {{  // inspection.colour, in the page: the colours of a row are not shipped
  if (v === null) return "rgb(200, 200, 200)";
  const u = Math.min(1, Math.max(0, (v - row.low) / (row.high - row.low)));
  let rgb = [255, 255 - 200 * u, 255 - 220 * u];
  if (row.kind === "signed") {{
    const a = u < 0.5 ? 1 - 2 * u : 2 * u - 1;
    rgb = u < 0.5 ? [255 - 200 * a, 255 - 150 * a, 255] : [255, 255 - 180 * a, 255 - 200 * a];
  }}
  return "rgb(" + rgb.map(Math.trunc).join(", ") + ")";
}}
function show(j) {{
  const row = DATA.rows[j];
  spans.forEach((s, i) => {{
    const v = row.values[i];
    s.style.backgroundColor = colour(v, row);
    s.title = (v === null ? "n/a" : v.toString());
  }});
  const stops = Array.from({{length: 11}}, (_, k) => colour(row.low + (row.high - row.low) * k / 10, row));
  document.getElementById("bar").style.background = "linear-gradient(to right, " + stops.join(", ") + ")";
  document.getElementById("low").textContent = row.low.toPrecision(3);
  document.getElementById("high").textContent = row.high.toPrecision(3);
  document.getElementById("unit").textContent = row.kind === "bits" ? "bits" : "";
}}
select.addEventListener("change", () => show(+select.value));
document.getElementById("text").addEventListener("mouseover", (e) => {{
  const i = e.target.dataset.i;
  if (i === undefined) return;
  const row = DATA.rows[+select.value];
  const v = row.values[+i];
  document.getElementById("info").textContent =
    "#" + i + " " + JSON.stringify(DATA.chars[+i]) + "  " + row.label + ": " + (v === null ? "n/a" : v);
}});
show(0);
</script>
</body></html>
"""

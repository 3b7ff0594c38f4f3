"""Training curves from RUN_DIR/metrics.jsonl, drawn in the terminal with braille dots, or as a PNG.

Each braille character is a 2 x 4 grid of dots, so a plot of W x H characters has 2W x 4H points.
Training loss, validation loss and (when recorded) cloze accuracy share the x axis: steps or seconds.
"""

import json
import math
import pathlib

from .errors import DataError

BRAILLE = 0x2800
DOT = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # DOT[row][col] within one character
SERIES = (("train_loss", "train loss", "34"), ("val_loss", "validation loss", "31"),
          ("cloze_accuracy", "cloze accuracy", "32"))


def read_metrics(run_dir):
    """The records of a run's metrics.jsonl: run_dir is the run directory, that file, or one of the
    run's checkpoints (the other commands take those, so a user may give one here too)."""
    path = pathlib.Path(run_dir)
    if path.suffix == ".npz" and path.is_file():
        path = path.parent
    path = path / "metrics.jsonl" if path.is_dir() else path
    if not path.exists():
        raise DataError(f"no metrics.jsonl in {run_dir}")
    records = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{run_dir} is not a metrics.jsonl; give a run directory, such as runs/rooms") from None
    for n, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            if n == len(lines):  # being written right now, or cut short by a crash
                break
            raise DataError(f"{path} line {n} is not JSON" + ("" if path.name == "metrics.jsonl" else
                            "; plot takes a run directory, its metrics.jsonl or a checkpoint")) from None
    return records


def series(records, x="step"):
    """{key: ([x...], [y...])} for the keys of SERIES present in the records."""
    out = {}
    for key, _, _ in SERIES:
        points = [(r[x], r[key]) for r in records if key in r and x in r and r[key] is not None
                  and math.isfinite(r[key])]
        if points:
            out[key] = ([p[0] for p in points], [p[1] for p in points])
    return out


MARKS = "•+x*o"  # without colour, the curves after the first are drawn with these, in order


def braille_plot(curves, width=72, height=16, colour=True, x_label="step", y_label="", y_range=None):
    """Lines of text: the curves {name: (label, colour code, xs, ys)} on shared axes; y_range (low, high)
    fixes the scale (an accuracy's 0 to 1). Without colour, the first curve is drawn in braille dots and
    each later one with a mark of its own (MARKS), so that they can be told apart."""
    xs = [v for _, _, cx, _ in curves.values() for v in cx]
    if not xs:
        raise DataError("nothing to plot yet")
    x0, x1 = min(xs), max(xs)
    # the top of the scale leaves out the first tenth of each curve, where the loss falls steeply, so
    # that the rest is not squashed flat; points above it are drawn on the top row
    ys = [v for _, _, _, cy in curves.values() for v in cy]
    late = [v for _, _, _, cy in curves.values() for v in cy[len(cy) // 10 :]]
    y0, y1 = (min(ys), max(late or ys)) if y_range is None else y_range
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    if x1 - x0 < 1e-12:
        x1 = x0 + 1
    cells = [[0] * width for _ in range(height)]
    owner = [[None] * width for _ in range(height)]
    for name, (_, _, cx, cy) in curves.items():
        previous = None
        for x, y in zip(cx, cy):
            px = round((x - x0) / (x1 - x0) * (2 * width - 1))
            py = min(4 * height - 1, max(0, round((y1 - y) / (y1 - y0) * (4 * height - 1))))
            points = [(px, py)] if previous is None else _line(previous, (px, py))
            for qx, qy in points:
                row, col = qy // 4, qx // 2
                cells[row][col] |= DOT[qy % 4][qx % 2]
                owner[row][col] = name
            previous = (px, py)
    marks = {name: "⣿" if i == 0 else MARKS[(i - 1) % len(MARKS)] for i, name in enumerate(curves)}
    ticks = {r: _fmt(y1 - (y1 - y0) * r / max(height - 1, 1)) for r in (0, height // 2, height - 1)}
    if max(ys) > y1:  # the first steps' losses were drawn on the top row: say that they lie at or above it
        ticks[0] = "≥" + ticks[0]
    label_w = max(len(t) for t in ticks.values()) + 1
    lines = [y_label] if y_label else []
    for r in range(height):
        tick = ticks.get(r, "")
        body = ""
        for c in range(width):
            ch = chr(BRAILLE + cells[r][c]) if cells[r][c] else " "
            if colour and owner[r][c] is not None and cells[r][c]:
                ch = f"\x1b[{curves[owner[r][c]][1]}m{ch}\x1b[0m"
            elif not colour and owner[r][c] is not None and marks[owner[r][c]] != "⣿":
                ch = marks[owner[r][c]]
            body += ch
        lines.append(f"{tick:>{label_w}}┤{body}")
    lines.append(" " * label_w + "└" + "─" * width)
    left, right = _fmt(x0), _fmt(x1)
    lines.append(" " * (label_w + 1) + left + " " * max(1, width - len(left) - len(right)) + right)
    lines.append(" " * (label_w + 1) + x_label.center(width))
    key = "   ".join((f"\x1b[{code}m⣿\x1b[0m " if colour else f"{marks[name]} ") + label
                     for name, (label, code, _, _) in curves.items())
    lines.append(" " * (label_w + 1) + key)
    return lines


def _line(a, b):
    """The points from a to b (Bresenham), so that curves are joined."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = abs(x1 - x0), -abs(y1 - y0)
    sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
    err, points = dx + dy, []
    while True:
        points.append((x0, y0))
        if (x0, y0) == (x1, y1):
            return points
        e2 = 2 * err
        if e2 >= dy:
            err += dy
            x0 += sx
        if e2 <= dx:
            err += dx
            y0 += sy


def _fmt(v):
    if abs(v) >= 1000 and float(v).is_integer():  # a step or a second count: 1,200, not 1.2e+03
        return f"{v:,.0f}"
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.3e}"


def terminal(run_dir, x="step", width=72, height=16, colour=True):
    """The loss plot and, if the run scored cloze prompts, the accuracy plot, as lines of text."""
    found = series(read_metrics(run_dir), "elapsed" if x == "time" else "step")
    if not found:
        raise DataError(f"{run_dir}: metrics.jsonl holds no losses yet")
    x_label = "seconds" if x == "time" else "step"
    losses = {k: (label, code, *found[k]) for k, label, code in SERIES if k in found and k != "cloze_accuracy"}
    lines = [f"{run_dir}"]
    if losses:
        lines += braille_plot(losses, width, height, colour, x_label, "loss (nats/char)")
    if "cloze_accuracy" in found:
        label, code = "cloze accuracy", "32"
        lines += [""] + braille_plot({"cloze_accuracy": (label, code, *found["cloze_accuracy"])}, width,
                                     max(6, height // 2), colour, x_label, "cloze accuracy", (0.0, 1.0))
    return lines


def png(run_dir, path, x="step"):
    """Write the curves as a PNG with matplotlib, which charlstm does not require."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise DataError("--png needs matplotlib: pip install matplotlib (or, in charlstm's checkout, "
                        "pip install '.[plot]')") from None
    found = series(read_metrics(run_dir), "elapsed" if x == "time" else "step")
    has_cloze = "cloze_accuracy" in found
    fig, axes = plt.subplots(2 if has_cloze else 1, 1, figsize=(8, 6 if has_cloze else 4), sharex=True, squeeze=False)
    for key, label, _ in SERIES:
        if key in found and key != "cloze_accuracy":
            axes[0][0].plot(*found[key], label=label)
    axes[0][0].set_ylabel("loss (nats/char)")
    axes[0][0].legend()
    if has_cloze:
        axes[1][0].plot(*found["cloze_accuracy"], color="tab:green")
        axes[1][0].set_ylabel("cloze accuracy")
    axes[-1][0].set_xlabel("seconds" if x == "time" else "step")
    fig.suptitle(str(run_dir))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

"""Time forward + backward of one training window (float32) and print characters per second as JSON.

    python bench/window.py --hidden 256 --layers 2 --batch 32 --window 64 --vocab 65

Only the model: no optimizer, no data loading. bench/speed.py measures the full training step.
"""

import json
import time

import numpy as np

import runner  # bench/runner.py, beside this script
from charlstm import model
from charlstm.data import Window
from charlstm.workspace import Workspace


def main():
    ap = runner.parser(__doc__)
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=65)
    ap.add_argument("--seconds", type=float, default=10.0, help="measure for about this long")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    spec = model.Spec(args.cell, args.vocab, args.hidden, args.layers)
    params = model.init_params(spec, rng)
    state = model.zero_state(spec, args.batch)
    work = Workspace()
    x = rng.integers(0, args.vocab, (args.window, args.batch))
    y = rng.integers(0, args.vocab, (args.window, args.batch))

    def one_window(state):
        loss, state, cache = model.forward(params, Window(x, y), state, work)
        model.backward(params, cache, work)
        return state

    for _ in range(3):  # warm up: allocate buffers, settle BLAS threads
        state = one_window(state)
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds or len(times) < 5:
        t0 = time.perf_counter()
        state = one_window(state)
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    chars = args.window * args.batch
    print(json.dumps({
        "cell": args.cell, "H": args.hidden, "L": args.layers, "B": args.batch, "T": args.window,
        "V": args.vocab, "windows": len(times), "median_ms": round(median * 1e3, 2),
        "chars_per_s": round(chars / median),
    }))


if __name__ == "__main__":
    main()

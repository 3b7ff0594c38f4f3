"""The floor of batch-1 scoring in NumPy: what one LSTM timestep's minimal call sequence costs, against what
`charlstm eval` pays per character.

    python bench/floor.py                      # S, M, L shapes; the BLAS threads NumPy has
    OPENBLAS_NUM_THREADS=1 python bench/floor.py

A layer-timestep at batch 1 cannot do less than the recurrent product (1 x H) @ (H x 4H) and the eleven
elementwise calls of cells/lstm.py `step` (the add of that product; exp, add and reciprocal over the
gates, g's multiply and subtract; the memory's two products and sum, tanh(c), the output's product; until
2026-12-05 nine, with one tanh over the gates): the floor per
character is L times that, the decoder and the input projections being one product per window. The
script times, in a tight loop
over preallocated arrays (no Python between the calls but the loop itself): the product alone, the
elementwise calls alone, the whole step; and, for comparison, charlstm's own scoring of a 4,096-character
text (evaluate.score). Medians of 7 rounds (the scoring: 5 rounds of 3 texts), microseconds per
layer-timestep and per character.
"""

import statistics
import time

import numpy as np

import runner  # bench/runner.py, beside this script
from charlstm import evaluate, model
from charlstm.cells import lstm

CONFIGS = {"S": (128, 1), "M": (256, 2), "L": (512, 2)}  # name: (H, L), as bench/speed.py
V = 65  # Tiny Shakespeare's vocabulary, as bench/speed.py


def per_call(fn, n, rounds=7):
    """Median over rounds of the seconds per call of fn, in microseconds."""
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - start) / n)
    return 1e6 * statistics.median(times)


def main():
    ap = runner.parser(__doc__)
    ap.add_argument("--configs", default="S,M,L", help="comma-separated shapes of S, M, L [default: %(default)s]")
    ap.add_argument("--calls", type=int, default=2000, help="calls per round [default: %(default)s]")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print("| config | H | L | product (µs) | elementwise (µs) | step (µs) | floor per character (µs) | "
          "charlstm eval per character (µs) | eval / floor |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.configs.split(","):
        H, L = CONFIGS[name]
        w_hhT = (rng.standard_normal((H, 4 * H)) * 0.05).astype(np.float32)
        x = rng.standard_normal((1, 4 * H)).astype(np.float32)
        gates, rec = np.empty_like(x), np.empty_like(x)
        h, c, h2, c2, tanh_c = (rng.standard_normal((1, H)).astype(np.float32) * 0.5 for _ in range(5))

        def product():
            np.matmul(h, w_hhT, out=rec)

        def elementwise():  # the step's calls after the product, on the same arrays
            np.add(x, rec, out=gates)  # as cells/lstm.py's step since 2026-12-05 (fifth session)
            np.exp(gates, out=gates)
            np.add(gates, 1, out=gates)
            np.reciprocal(gates, out=gates)
            g = gates[:, 3 * H :]
            np.multiply(g, 2, out=g)
            np.subtract(g, 1, out=g)
            np.multiply(gates[:, H : 2 * H], c, out=c2)
            np.multiply(gates[:, :H], gates[:, 3 * H :], out=tanh_c)
            np.add(c2, tanh_c, out=c2)
            np.tanh(c2, out=tanh_c)
            np.multiply(gates[:, 2 * H : 3 * H], tanh_c, out=h2)

        def whole():
            np.copyto(gates, x)
            with np.errstate(over="ignore"):
                lstm.step(gates, h, c, w_hhT, h2, c2, tanh_c, rec)

        t_product, t_elementwise, t_step = (per_call(f, args.calls) for f in (product, elementwise, whole))
        spec = model.Spec("lstm", V, H, L)
        params = model.init_params(spec, np.random.default_rng(0))
        ids = np.random.default_rng(1).integers(0, V, 4097)
        t_eval = per_call(lambda: evaluate.score(params, [ids], 256), 3, rounds=5) / 4096
        floor = L * t_step
        print(f"| {name} | {H} | {L} | {t_product:.2f} | {t_elementwise:.2f} | {t_step:.2f} | {floor:.2f} | "
              f"{t_eval:.2f} | {t_eval / floor:.2f} |", flush=True)


if __name__ == "__main__":
    main()

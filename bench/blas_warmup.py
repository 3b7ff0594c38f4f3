"""Does this machine's OpenBLAS run a product slowly until the process has run a large one?
(charlstm/blaswarmup.py; docs/performance.md.) In a fresh process, one BLAS thread:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/blas_warmup.py

times S's weight-gradient product, (512, 1024) @ (1024, 128) in float32 as model.backward runs it,
then runs blaswarmup.warm_up() and times it again; prints one JSON line with both medians and the host.
"""

import argparse
import json
import statistics
import time

import numpy as np

from runner import cpu  # bench/runner.py, beside this script


def median_ms(f, calls=30):
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1e3, 3)


def main():
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    from threadpoolctl import threadpool_info, threadpool_limits  # a benchmark-only dependency

    from charlstm import blaswarmup

    rng = np.random.default_rng(0)
    d = rng.standard_normal((1024, 512), dtype=np.float32)  # (T·B, 4H): the gates' gradients
    x = rng.standard_normal((1024, 128), dtype=np.float32)  # (T·B, H): the layer's outputs
    out = np.empty((512, 128), np.float32)

    def product():
        np.matmul(d.T, x, out=out)

    with threadpool_limits(1):
        before = median_ms(product)
        blaswarmup.warm_up()
        after = median_ms(product)
    blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    print(json.dumps({"before_ms": before, "after_ms": after, "cpu": cpu(),
                      "blas": [{k: p.get(k) for k in ("internal_api", "version", "architecture")} for p in blas],
                      "numpy": np.__version__}))


if __name__ == "__main__":
    main()

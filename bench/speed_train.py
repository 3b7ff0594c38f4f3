"""The training step, measured as one side of one round (bench/speed.py runs it, a fresh process each time):
characters per second, as a median over single calls, printed as one JSON line.

    python bench/speed_train.py --side ours --config M --seconds 2
    python bench/speed_train.py --side torch --config M          # needs PyTorch
    python bench/speed_train.py --side bound --config M

  ours   the training step of `charlstm train` itself: the Trainer that the CLI builds (launch.prepare,
         so its choice of worker processes, parallel.auto_workers, or --workers) on a random 1 MB corpus,
         each call of train.train_step in its loop timed (forward, backward, clipping, Adam);
  torch  PyTorch: one-hot input, nn.LSTM, nn.Linear, cross-entropy, clip_grad_norm_, Adam, state carried
         and detached;
  bound  the GEMM bound: T*B characters over the time the window's matrix products alone take at the
         float32 GEMM speed NumPy reaches on the same shapes, shared out as `ours` shares them (a worker's
         B/P streams on one BLAS thread, when it starts P workers); and the FLOPs per character.
"""

import os
import statistics
import sys
import tempfile
import time
import types

from timing import V, Clock, child_parser, run_child, timed  # bench/timing.py, beside this script


class _Measured(Exception):
    """Raised through the Trainer's loop once the round has its step times."""


def ours_train(a, H, L, B, T):
    """The training step of `charlstm train`: its own Trainer, built by the function the CLI calls, runs its
    own loop; the bench only times the calls to train.train_step (a wrapper around the module's function,
    looked up by the loop at every step) and stops the loop by raising once it has enough of them."""
    import numpy as np

    from charlstm import launch
    from charlstm import train as train_mod

    real, clock = train_mod.train_step, Clock(a.seconds, a.warmup)

    def observed(*args, **kwargs):
        t0 = time.perf_counter()
        out = real(*args, **kwargs)
        if clock.add(time.perf_counter() - t0):
            raise _Measured
        return out

    with tempfile.TemporaryDirectory(prefix="charlstm-speed-") as d:
        corpus = os.path.join(d, "corpus.txt")
        ids = np.random.default_rng(0).integers(0, V, 1_000_000)
        with open(corpus, "w", encoding="utf-8") as fh:
            fh.write("".join(chr(32 + c) for c in ids))  # V distinct characters, none of them a newline
        never = 10**9  # no validation or checkpoint in the middle of a round: they are not the step
        overrides = [f"model.hidden={H}", f"model.layers={L}", f"data.batch={B}", f"data.window={T}",
                     f"train.workers={a.workers}", f"train.steps={never}", f"train.eval_every={never}",
                     f"train.save_every={never}"]
        trainer = launch.prepare([corpus], out=os.path.join(d, "run"), overrides=overrides, quiet=True)
        assert trainer.cfg.data.mode == "stream"  # every step trains on T*B targets
        train_mod.train_step = observed
        try:
            trainer.run()
        except _Measured:
            pass
        finally:
            train_mod.train_step = real
    workers = trainer.engine.workers
    return {**clock.report(T * B), "workers": workers}


def torch_train(a, torch, H, L, B, T):
    from charlstm.config import OptimConfig

    optim = OptimConfig()  # charlstm's defaults: Adam, its rate, its clipping
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(V, H, L)
    decoder = torch.nn.Linear(H, V)
    ps = list(lstm.parameters()) + list(decoder.parameters())
    opt = torch.optim.Adam(ps, lr=optim.lr, betas=optim.betas, eps=optim.eps)
    x = torch.randint(0, V, (T, B))
    y = torch.randint(0, V, (T, B))
    box = {"state": None}

    def step():
        out, (h, c) = lstm(torch.nn.functional.one_hot(x, V).float(), box["state"])
        loss = torch.nn.functional.cross_entropy(decoder(out).reshape(-1, V), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ps, optim.clip)
        opt.step()
        box["state"] = (h.detach(), c.detach())

    return timed(step, a.seconds, a.warmup).report(T * B)


def gemm_bound(a, H, L, B, T):
    """Characters per second if a training window took only its matrix products, each at the speed
    NumPy's float32 GEMM reaches on that shape here, shared out as `charlstm train` shares them: with P
    worker processes (parallel.auto_workers, or --workers), each worker's products (B/P streams) on one
    BLAS thread, the P workers running side by side on their own cores; with one process, the products
    of all B streams on --threads threads. And the FLOPs per character."""
    from threadpoolctl import threadpool_limits

    workers, streams, threads = bound_split(a, H, B)
    with threadpool_limits(threads):
        seconds, flops = _products_time(H, L, streams, T, a.seconds, a.warmup)
    return {"seconds_per_call": seconds, "chars_per_call": T * B, "chars_per_s": T * B / seconds,
            "gflop_per_char": flops / (T * streams) / 1e9, "bound_workers": workers}


def bound_split(a, H, B):
    """(workers, streams a worker's products are timed for, BLAS threads to time them on): as `charlstm
    train` would run a model of H units on B streams, given --workers (0: its own choice) and --threads."""
    from charlstm import parallel

    workers = a.workers or parallel.auto_workers(types.SimpleNamespace(hidden=H), B)  # all it reads of a spec
    return workers, B // workers, 1 if workers > 1 else a.threads


def _products_time(H, L, B, T, seconds, warmup):
    """(seconds, FLOPs) of one window's products for B streams, each shape timed alone (median of calls),
    after the one large product every engine runs at start-up (charlstm/blaswarmup.py)."""
    import numpy as np

    from charlstm import blaswarmup

    blaswarmup.warm_up()
    G, N = 4 * H, T * B
    shapes = []  # (m, k, n, count): (m, k) @ (k, n)
    for k in range(L):
        shapes.append((B, H, G, T))  # forward recurrent, per step
        shapes.append((B, G, H, T - 1))  # backward recurrent, per step
        shapes.append((G, N, H, 1))  # dW_hh
        if k > 0:
            shapes += [(N, H, G, 1), (G, N, H, 1), (N, G, H, 1)]  # input projection, dW_ih, dX
    shapes += [(N, H, V, 1), (V, N, H, 1), (N, V, H, 1)]  # decoder forward, dW, dX
    rng = np.random.default_rng(0)
    total_time, flops, cache = 0.0, 0.0, {}
    for m, k, n, count in shapes:
        if (m, k, n) not in cache:
            x = rng.standard_normal((m, k)).astype(np.float32)
            w = rng.standard_normal((k, n)).astype(np.float32)
            out = np.empty((m, n), np.float32)
            clock = timed(lambda: np.matmul(x, w, out=out), seconds / len(shapes), warmup / len(shapes))
            cache[(m, k, n)] = statistics.median(clock.times)
        total_time += count * cache[(m, k, n)]
        flops += count * 2.0 * m * k * n
    return total_time, flops


def measure(a, torch, H, L, B, T):
    if a.side == "bound":
        return gemm_bound(a, H, L, B, T)
    return torch_train(a, torch, H, L, B, T) if torch else ours_train(a, H, L, B, T)


if __name__ == "__main__":
    sys.exit(run_child(child_parser(__doc__, ["ours", "torch", "bound"]).parse_args(), "train", measure))

"""Scoring, measured as one side of one round (bench/speed.py runs it, a fresh process each time): characters
scored per second by full-context evaluation of one text of EVAL_CHARS characters (batch 1, windows of
256), as `charlstm eval FILE` scores a file, as a median over single calls, printed as one JSON line.

    python bench/speed_eval.py --side ours --config M
    python bench/speed_eval.py --side torch --config M      # needs PyTorch
"""

import sys

from timing import V, child_parser, run_child, timed  # bench/timing.py, beside this script

EVAL_CHARS = 4096


def ours_eval(a, H, L, n_chars):
    """As `charlstm eval FILE` scores one file: one stream from the zero state, windows of 256."""
    import numpy as np

    from charlstm import evaluate, model
    from charlstm.workspace import Workspace

    spec = model.Spec("lstm", V, H, L)
    params = model.init_params(spec, np.random.default_rng(0))
    ids = np.random.default_rng(1).integers(0, V, n_chars)
    work = Workspace()
    return timed(lambda: evaluate.score(params, [ids], 256, work), a.seconds, a.warmup).report(n_chars - 1)


def torch_eval(a, torch, H, L, n_chars):
    torch.manual_seed(0)
    lstm, decoder = torch.nn.LSTM(V, H, L), torch.nn.Linear(H, V)
    ids = torch.randint(0, V, (n_chars,))

    def run():
        with torch.no_grad():
            state, total = None, 0.0
            for s in range(0, n_chars - 1, 256):
                x, y = ids[s : min(s + 256, n_chars - 1)], ids[s + 1 : min(s + 257, n_chars)]
                out, state = lstm(torch.nn.functional.one_hot(x, V).float()[:, None], state)
                logp = torch.log_softmax(decoder(out[:, 0]), dim=-1)
                total -= logp[torch.arange(len(y)), y].sum().item()
            return total

    return timed(run, a.seconds, a.warmup).report(n_chars - 1)


def measure(a, torch, H, L, B, T):
    return torch_eval(a, torch, H, L, EVAL_CHARS) if torch else ours_eval(a, H, L, EVAL_CHARS)


if __name__ == "__main__":
    sys.exit(run_child(child_parser(__doc__, ["ours", "torch"]).parse_args(), "eval", measure))

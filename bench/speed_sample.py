"""Sampling, measured as one side of one round (bench/speed.py runs it, a fresh process each time): characters
generated per second at a batch of 1 or 64 (prime, then sample at temperature 1), as a median over single
calls, printed as one JSON line. PyTorch is measured with oneDNN on and off (--onednn).

    python bench/speed_sample.py --side ours --config M --batch 1
    python bench/speed_sample.py --side torch --config M --batch 64 --onednn off   # needs PyTorch
    python bench/speed_sample.py --side bound --config M --batch 1

The bound: characters per second if a generated character cost only its matrix products at the speed
NumPy reaches on them (each layer's recurrent product, each upper layer's input product, the decoder;
the first layer's input is a row lookup), with nothing else: no gates, no choice, no Python.
"""

import sys

from timing import V, child_parser, run_child, timed  # bench/timing.py, beside this script

LENGTH = {1: 300, 64: 100}  # characters generated per call, by batch


def ours_sample(a, H, L, batch, length):
    import numpy as np

    from charlstm import model, sample
    from charlstm.vocab import Vocab

    spec = model.Spec("lstm", V, H, L)
    params = model.init_params(spec, np.random.default_rng(0))
    packed = model.pack(params)
    vocab = Vocab(chr(32 + i) for i in range(V))
    requests = [sample.parse("A", i) for i in range(batch)]
    options = sample.Options(length=length)
    return timed(lambda: sample.generate(packed, vocab, requests, options, seed=0), a.seconds,
                 a.warmup).report(batch * length)


def torch_sample(a, torch, H, L, batch, length):
    onednn = a.onednn == "on"
    torch.manual_seed(0)
    lstm, decoder = torch.nn.LSTM(V, H, L), torch.nn.Linear(H, V)

    def run():
        with torch.no_grad(), torch.backends.mkldnn.flags(enabled=onednn):
            x = torch.zeros(batch, dtype=torch.long)
            state = None
            for _ in range(length + 1):
                out, state = lstm(torch.nn.functional.one_hot(x, V).float()[None], state)
                probs = torch.softmax(decoder(out[0]), dim=-1)
                x = torch.multinomial(probs, 1)[:, 0]

    return timed(run, a.seconds, a.warmup).report(batch * length)


def bound_sample(a, H, L, batch, length):
    import numpy as np

    rng = np.random.default_rng(0)
    h = rng.standard_normal((batch, H)).astype(np.float32)
    gates = np.empty((batch, 4 * H), np.float32)
    logits = np.empty((batch, V), np.float32)
    recurrent = [rng.standard_normal((H, 4 * H)).astype(np.float32) for _ in range(L)]
    upward = [rng.standard_normal((H, 4 * H)).astype(np.float32) for _ in range(L - 1)]
    decoder = rng.standard_normal((H, V)).astype(np.float32)

    def products():
        for _ in range(length):
            for k in range(L):
                if k:
                    np.matmul(h, upward[k - 1], out=gates)
                np.matmul(h, recurrent[k], out=gates)
            np.matmul(h, decoder, out=logits)

    return timed(products, a.seconds, a.warmup).report(batch * length)


def measure(a, torch, H, L, B, T):
    length = LENGTH[a.batch]
    if a.side == "bound":
        return bound_sample(a, H, L, a.batch, length)
    return torch_sample(a, torch, H, L, a.batch, length) if torch else ours_sample(a, H, L, a.batch, length)


if __name__ == "__main__":
    ap = child_parser(__doc__, ["ours", "torch", "bound"])
    ap.add_argument("--batch", type=int, choices=list(LENGTH), default=1, help="prompts sampled together "
                                                                               "[default: %(default)s]")
    ap.add_argument("--onednn", choices=["on", "off"], default="on", help="PyTorch: with oneDNN or without")
    sys.exit(run_child(ap.parse_args(), "sample", measure))

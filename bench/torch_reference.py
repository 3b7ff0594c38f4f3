"""Write tests/data/torch_reference.npz: PyTorch's own numbers for the model charlstm implements.

For each cell (lstm, gru, rnn, and rnn_relu: nn.RNN(nonlinearity="relu")), random float64 weights in
PyTorch's layout, random characters and a random initial state go through torch.nn.LSTM / GRU / RNN, a
Linear decoder and cross-entropy; the file keeps the inputs, the loss, the final state and every
parameter's gradient. tests/test_torch_reference.py checks charlstm against it, so the test suite needs
no PyTorch.

    python bench/torch_reference.py        # in an environment with torch installed
"""

import numpy as np

import runner  # bench/runner.py, beside this script

OUT = runner.ROOT / "tests" / "data" / "torch_reference.npz"
V, H, L, T, B = 9, 5, 2, 6, 3


def main():
    runner.parser(__doc__).parse_args()
    import torch  # a benchmark-only dependency: --help works without it

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    arrays = {}
    cells = (("lstm", torch.nn.LSTM, {}), ("gru", torch.nn.GRU, {}), ("rnn", torch.nn.RNN, {}),
             ("rnn_relu", torch.nn.RNN, {"nonlinearity": "relu"}))
    for name, cls, options in cells:
        rnn = cls(input_size=V, hidden_size=H, num_layers=L, **options).double()
        decoder = torch.nn.Linear(H, V).double()
        with torch.no_grad():  # wider than the default init, so the nonlinearities are exercised
            for p in list(rnn.parameters()) + list(decoder.parameters()):
                p.uniform_(-1.0, 1.0)
        x = rng.integers(0, V, (T, B))
        y = rng.integers(0, V, (T, B))
        n_state = 2 if name == "lstm" else 1
        state = [torch.tensor(rng.normal(size=(L, B, H))) for _ in range(n_state)]
        onehot = torch.nn.functional.one_hot(torch.tensor(x), V).double()
        out, final = rnn(onehot, tuple(state) if name == "lstm" else state[0])
        logits = decoder(out)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.tensor(y).reshape(-1))
        loss.backward()
        final = final if name == "lstm" else (final,)
        prefix = f"{name}/"
        arrays[prefix + "x"] = x
        arrays[prefix + "y"] = y
        arrays[prefix + "loss"] = np.array(loss.item())
        for j, s in enumerate(state):
            arrays[prefix + f"state{j}"] = s.numpy()
            arrays[prefix + f"final{j}"] = final[j].detach().numpy()
        for module, mname in ((rnn, name.split("_")[0]), (decoder, "decoder")):
            for pname, p in module.named_parameters():
                arrays[prefix + f"param/{mname}.{pname}"] = p.detach().numpy().copy()
                arrays[prefix + f"grad/{mname}.{pname}"] = p.grad.numpy().copy()
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez(OUT, **arrays)
    print(f"wrote {OUT} (torch {torch.__version__})")


if __name__ == "__main__":
    main()

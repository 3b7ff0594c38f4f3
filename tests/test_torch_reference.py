"""charlstm against numbers PyTorch computed (tests/data/torch_reference.npz, made by
bench/torch_reference.py with torch.nn.LSTM / GRU / RNN, a Linear decoder and cross-entropy, float64)."""

import pathlib

import numpy as np
import pytest

from charlstm import model
from charlstm.data import Window

REFERENCE = np.load(pathlib.Path(__file__).parent / "data" / "torch_reference.npz", allow_pickle=False)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "rnn_relu"])
def test_loss_state_and_gradients_equal_pytorch(cell):
    ref = {k[len(cell) + 1:]: REFERENCE[k] for k in REFERENCE.files if k.startswith(cell + "/")}
    params = {k[len("param/"):]: v.copy() for k, v in ref.items() if k.startswith("param/")}
    n_state = 2 if cell == "lstm" else 1
    state = tuple(ref[f"state{j}"] for j in range(n_state))
    spec = model.spec_of(params)
    if cell == "rnn_relu":
        spec = model.Spec(spec.cell, spec.vocab, spec.hidden, spec.layers, nonlinearity="relu")
    packed = model.pack(params, spec)
    loss, final, cache = model.forward(params, Window(ref["x"], ref["y"]), state, packed=packed)
    assert loss == pytest.approx(float(ref["loss"]), rel=1e-12)
    for j in range(n_state):
        np.testing.assert_allclose(final[j], ref[f"final{j}"], rtol=1e-12, atol=1e-13)
    grads = model.backward(params, cache)
    assert sorted(grads) == sorted(params)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref["grad/" + name], rtol=1e-10, atol=1e-13, err_msg=name)

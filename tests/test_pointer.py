"""The pointer (model.pointer, charlstm/pointer.py): exact gradients, its equations, sampling as training."""

import numpy as np
import pytest

from charlstm import model, pointer, stepwise
from charlstm.data import Window
from gradcheck import numeric_grad, relative_error

CELLS = ["lstm", "gru"]


def make(cell, V=6, H=4, L=1, B=3, width=3, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    spec = model.Spec(cell, V, H, L, pointer=width)
    params = {k: v * scale for k, v in model.init_params(spec, rng, np.float64).items()}
    return spec, params, rng


def texts_with_repeats(rng, V, T, B):
    """(T, B) ids in which characters come back, so the pointer has something to copy."""
    x = rng.integers(0, V, (T + 1, B))
    x[T // 2 + 1 :] = x[1 : T + 1 - T // 2]  # the second half repeats the first
    return x[:-1], x[1:]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("L, B, T", [(1, 1, 1), (1, 3, 7), (2, 2, 6)])
def test_gradients_match_finite_differences(cell, L, B, T):
    spec, params, rng = make(cell, L=L, B=B, seed=L + B + T)
    x, y = texts_with_repeats(rng, spec.vocab, T, B)
    state = tuple(rng.normal(size=s.shape) for s in model.zero_state(spec, B, np.float64))
    _, _, cache = model.forward(params, Window(x, y), state)
    grads = model.backward(params, cache)
    assert grads.keys() == params.keys() and any(k.startswith("pointer.") for k in grads)
    for name in params:
        num = numeric_grad(lambda: model.forward(params, Window(x, y), state)[0], params[name])
        assert relative_error(grads[name], num) < 1e-6, name


@pytest.mark.parametrize("cell", CELLS)
def test_gradients_with_weights_padding_and_dropout(cell):
    """Weighted targets (data.loss_pattern), lines padded at their end, dropout before the decoder."""
    spec, params, rng = make(cell, L=2, B=3, seed=7)
    x, y = texts_with_repeats(rng, spec.vocab, 8, 3)
    lengths = np.array([8, 5, 3])
    mask = (np.arange(8)[:, None] < lengths[None, :]) * np.where(rng.random((8, 3)) < 0.3, 5.0, 1.0)
    state = model.zero_state(spec, 3, np.float64)

    def run():
        drop = model.Dropout(layers=0.2, output=0.3, seed=3)
        return model.forward(params, Window(x, y, mask), state, dropout=drop)

    grads = model.backward(params, run()[2])
    for name in params:
        num = numeric_grad(lambda: run()[0], params[name])
        assert relative_error(grads[name], num) < 1e-6, name


def test_loss_is_the_mixture_written_out():
    """The equations of pointer.py's docstring, position by position, in plain Python loops."""
    spec, params, rng = make("lstm", V=5, H=4, B=2, width=3, seed=2)
    x, y = texts_with_repeats(rng, 5, 6, 2)
    state = model.zero_state(spec, 2, np.float64)
    loss, _, cache = model.forward(params, Window(x, y), state)
    top = cache.top.reshape(6, 2, 4)
    lin = {n: (params[f"pointer.{n}.weight"], params[f"pointer.{n}.bias"]) for n in pointer.NAMES}
    expected = []
    for b in range(2):
        for t in range(6):
            h = top[t, b]
            logits = params["decoder.weight"] @ h + params["decoder.bias"]
            p_vocab = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
            q = lin["query"][0] @ h + lin["query"][1]
            z = [q @ (lin["key"][0] @ top[j, b] + lin["key"][1]) / np.sqrt(3) for j in range(t)]
            z.append(lin["gate"][0][0] @ h + lin["gate"][1][0])
            a = np.exp(np.array(z) - max(z))
            a /= a.sum()
            p = a[-1] * p_vocab[y[t, b]] + sum(a[j] for j in range(t) if y[j, b] == y[t, b])
            expected.append(-np.log(p))
    assert np.isclose(loss, np.mean(expected), rtol=1e-12)


def test_a_pointer_that_trusts_itself_copies_a_repeated_character():
    """With the gate shut and the query matching the key of the position before a repeat, the model
    predicts what followed there, whatever the decoder says."""
    spec, params, rng = make("lstm", V=4, H=4, B=1, width=2, seed=1)
    params["pointer.gate.bias"][:] = -50.0
    params["pointer.gate.weight"][:] = 0.0
    x = np.array([[0], [1], [2], [0]])
    y = np.array([[1], [2], [0], [1]])
    _, _, cache = model.forward(params, Window(x, y), model.zero_state(spec, 1, np.float64))
    g = cache.pointed.g[0]
    assert g[0] == 1.0 and np.all(g[1:] < 1e-15)  # the first position has nothing to point at


@pytest.mark.parametrize("cell", CELLS)
def test_sampling_step_by_step_gives_the_window_s_probabilities(cell):
    """stepwise.read + a stepwise.Stepper (the pointer's Memory) reproduce the training forward pass's mixed
    probabilities, prompt read side by side or one character at a time."""
    spec, params, rng = make(cell, V=6, H=5, L=2, B=2, width=3, seed=4)
    x, y = texts_with_repeats(rng, 6, 9, 2)
    _, _, cache = model.forward(params, Window(x, y), model.zero_state(spec, 2, np.float64))
    window_logp = -np.log(cache.pointed.p)  # (B, T): -log p of each target
    packed = model.pack(params, spec)
    for b in range(2):
        state, logp = stepwise.read(packed, [x[:3, b]])
        stepper = stepwise.Stepper(packed, state)
        got = [-logp[0, y[2, b]]]
        for t in range(3, 9):
            logp = stepper.step(x[t, b : b + 1])
            got.append(-logp[0, y[t, b]])
        assert np.allclose(got, window_logp[b, 2:], rtol=1e-10), (got, window_logp[b, 2:])


def test_memory_keeps_the_last_positions_only():
    memory = pointer.Memory(batch=1, width=2, size=3, dtype=np.float64)
    for t in range(5):
        memory.hold(np.full((1, 2), float(t)))
        memory.commit(np.array([t]))
    assert memory.count[0] == 5 and sorted(memory.values[0]) == [2, 3, 4]


def test_checkpoint_spec_reads_the_pointer_off_the_parameters():
    spec, params, _ = make("lstm", width=7)
    assert model.spec_of(params).pointer == 7
    assert set(pointer.param_shapes(7, 4)) <= set(model.param_shapes(spec))
    assert not any(k.startswith("pointer.") for k in model.param_shapes(model.Spec("lstm", 6, 4, 1)))

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import naive
from charlstm import dropout, model, stepwise
from charlstm.cells import CELLS
from charlstm.data import Window
from charlstm.workspace import Workspace
from gradcheck import numeric_grad, relative_error

CELL_NAMES = sorted(CELLS)


def make(cell, V, H, L, B, seed=0, dtype=np.float64, scale=2.0):
    """Parameters a little wider than the default init, random initial state, so every nonlinearity bends."""
    rng = np.random.default_rng(seed)
    spec = model.Spec(cell, V, H, L)
    params = {k: (v * scale).astype(dtype) for k, v in model.init_params(spec, rng, np.float64).items()}
    state = tuple(rng.normal(size=s.shape).astype(dtype) for s in model.zero_state(spec, B))
    return spec, params, state, rng


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("V, L, B, T", [(5, 1, 1, 1), (7, 1, 3, 7), (11, 2, 1, 7), (6, 2, 3, 1),
                                        (9, 3, 3, 7), (8, 3, 1, 1)])
def test_gradients_match_finite_differences(cell, V, L, B, T):
    spec, params, state, rng = make(cell, V, 3, L, B, seed=V + L + B + T)
    x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    _, _, cache = model.forward(params, Window(x, y), state)
    grads = model.backward(params, cache)
    assert grads.keys() == params.keys()

    def loss():
        return model.forward(params, Window(x, y), state)[0]

    for name in params:
        assert grads[name].shape == params[name].shape
        err = relative_error(grads[name], numeric_grad(loss, params[name]))
        assert err < 1e-6, (name, err)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_masked_loss_gradients_match_finite_differences(cell):
    spec, params, state, rng = make(cell, 6, 3, 2, 3, seed=4)
    x, y = rng.integers(0, 6, (5, 3)), rng.integers(0, 6, (5, 3))
    mask = (rng.random((5, 3)) < 0.6).astype(np.float64)
    _, _, cache = model.forward(params, Window(x, y, mask), state)
    grads = model.backward(params, cache)
    for name in params:
        num = numeric_grad(lambda: model.forward(params, Window(x, y, mask), state)[0], params[name])
        assert relative_error(grads[name], num) < 1e-6, name


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("layers", [1, 2])
def test_streams_padded_at_their_end_skip_the_padding_exactly(cell, layers):
    """Lines mode: streams of different lengths, padded at the end, in no order. The forward pass sorts
    them and skips the padding (model.packing); the gradients must still be exact, the padding's
    content must not matter, and each stream's final state is the one after its own last character."""
    spec, params, state, rng = make(cell, 7, 3, layers, 4, seed=3)
    T, lengths = 6, np.array([3, 6, 1, 4])
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)
    assert model.packing(mask)[0] is not None  # the case under test: streams reordered and skipped
    x, y = rng.integers(0, 7, (T, 4)), rng.integers(0, 7, (T, 4))
    loss, final, cache = model.forward(params, Window(x, y, mask), state)
    grads = model.backward(params, cache)
    for name in params:
        num = numeric_grad(lambda: model.forward(params, Window(x, y, mask), state)[0], params[name])
        assert relative_error(grads[name], num) < 1e-6, name
    x2 = np.where(mask > 0, x, rng.integers(0, 7, (T, 4)))  # other padding characters: nothing changes
    loss2, final2, cache2 = model.forward(params, Window(x2, y, mask), state)
    assert loss2 == loss
    for name, g in model.backward(params, cache2).items():
        np.testing.assert_array_equal(g, grads[name], err_msg=name)
    for b, n in enumerate(lengths):  # each stream alone, for its own length
        alone = tuple(s[:, b : b + 1] for s in state)
        _, expected, _ = model.forward(params, Window(x[:n, b : b + 1], y[:n, b : b + 1]), alone)
        for got, want in zip(final, expected):
            np.testing.assert_allclose(got[:, b], want[:, 0], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("steps_per_chunk", [1, 2, 3])
def test_lstm_backward_in_chunks_of_steps_is_exact(monkeypatch, steps_per_chunk):
    """The LSTM's backward pass runs the window in chunks of steps (cells/lstm.py CHUNK_BYTES), which
    the small models of the other tests fit in one: with chunks of 1 to 3 steps over 7 (the last one
    short) and streams padded at their end, the gradients match finite differences and are the
    one-chunk gradients bit for bit."""
    from charlstm.cells import lstm

    spec, params, state, rng = make("lstm", 7, 3, 2, 3, seed=5)
    T, lengths = 7, np.array([7, 2, 5])
    mask = (np.arange(T)[:, None] < lengths[None, :]).astype(np.float64)
    x, y = rng.integers(0, 7, (T, 3)), rng.integers(0, 7, (T, 3))
    whole = model.backward(params, model.forward(params, Window(x, y, mask), state)[2])
    monkeypatch.setattr(lstm, "CHUNK_BYTES", steps_per_chunk * 3 * 4 * 3 * 8)  # B · 4H · float64 a step
    _, _, cache = model.forward(params, Window(x, y, mask), state)
    assert max(1, lstm.CHUNK_BYTES // cache.layers[0][1]["gates"][0].nbytes) == steps_per_chunk
    grads = model.backward(params, cache)
    for name in params:
        np.testing.assert_array_equal(grads[name], whole[name], err_msg=name)
        num = numeric_grad(lambda: model.forward(params, Window(x, y, mask), state)[0], params[name])
        assert relative_error(grads[name], num) < 1e-6, name


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_mask_ignores_padded_targets(cell):
    spec, params, state, rng = make(cell, 6, 4, 2, 2)
    x, y = rng.integers(0, 6, (5, 2)), rng.integers(0, 6, (5, 2))
    mask = np.ones((5, 2))
    mask[3:, 1] = 0
    y2 = y.copy()
    y2[3:, 1] = (y2[3:, 1] + 1) % 6  # change only padded targets
    a = model.forward(params, Window(x, y, mask), state)[0]
    b = model.forward(params, Window(x, y2, mask), state)[0]
    assert a == b
    logits, _ = naive.run(cell, params, x, state)
    assert a == pytest.approx(naive.loss(logits, y, mask), rel=1e-12)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_one_step_against_equations_written_out(cell):
    """T=1, L=1: the loss and new state against the cell's equations, spelled out here once more."""
    spec, params, state, rng = make(cell, 5, 4, 1, 2)
    x, y = rng.integers(0, 5, (1, 2)), rng.integers(0, 5, (1, 2))
    loss, final, _ = model.forward(params, Window(x, y), state)

    p = {k.split(".", 1)[1]: v for k, v in params.items()}
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    xv = np.eye(5)[x[0]]  # (B, V)
    h = state[0][0]
    pre_x = xv @ p["weight_ih_l0"].T + p["bias_ih_l0"]
    pre_h = h @ p["weight_hh_l0"].T + p["bias_hh_l0"]
    if cell == "lstm":
        c = state[1][0]
        i, f, g, o = np.split(pre_x + pre_h, 4, axis=1)
        c_new = sig(f) * c + sig(i) * np.tanh(g)
        h_new = sig(o) * np.tanh(c_new)
        np.testing.assert_allclose(final[1][0], c_new, rtol=1e-12, atol=1e-12)
    elif cell == "gru":
        rx, zx, nx = np.split(pre_x, 3, axis=1)
        rh, zh, nh = np.split(pre_h, 3, axis=1)
        r, z = sig(rx + rh), sig(zx + zh)
        h_new = (1 - z) * np.tanh(nx + r * nh) + z * h
    else:
        h_new = np.tanh(pre_x + pre_h)
    np.testing.assert_allclose(final[0][0], h_new, rtol=1e-12, atol=1e-12)
    logits = h_new @ params["decoder.weight"].T + params["decoder.bias"]
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-logp[np.arange(2), y[0]].mean(), rel=1e-12)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_one_window_equals_two_windows_with_carried_state(cell):
    spec, params, state, rng = make(cell, 7, 5, 2, 3)
    x, y = rng.integers(0, 7, (10, 3)), rng.integers(0, 7, (10, 3))
    work = Workspace()
    whole, final, _ = model.forward(params, Window(x, y), state, work)
    first, carried, _ = model.forward(params, Window(x[:5], y[:5]), state, work)
    second, final2, _ = model.forward(params, Window(x[5:], y[5:]), carried, work)
    assert (first + second) / 2 == pytest.approx(whole, rel=1e-13)
    for a, b in zip(final, final2):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_float32_agrees_with_float64(cell):
    spec, p64, s64, rng = make(cell, 11, 16, 2, 4, scale=1.0)
    x, y = rng.integers(0, 11, (9, 4)), rng.integers(0, 11, (9, 4))
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    s32 = tuple(s.astype(np.float32) for s in s64)
    l64, f64, c64 = model.forward(p64, Window(x, y), s64)
    g64 = model.backward(p64, c64)
    l32, f32, c32 = model.forward(p32, Window(x, y), s32)
    g32 = model.backward(p32, c32)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for a, b in zip(f32, f64):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in p64:
        assert g32[name].dtype == np.float32, name
        np.testing.assert_allclose(g32[name], g64[name], rtol=1e-3, atol=1e-5 * np.abs(g64[name]).max())


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_saturated_gates_are_exact_and_raise_no_warning(cell):
    """Pre-activations in the hundreds in float32, where the LSTM's e^-x overflows to inf: every gate is
    then exactly 0 or 1, the window and the sampling step agree with the plain equations, and no
    floating-point warning escapes."""
    spec, p64, s64, rng = make(cell, 6, 4, 2, 3, scale=1.0)
    p64 = {k: v * (1 if k.startswith("decoder") else 400) for k, v in p64.items()}
    p32, s32 = {k: v.astype(np.float32) for k, v in p64.items()}, tuple(s.astype(np.float32) for s in s64)
    x = rng.integers(0, 6, (5, 3))
    with np.errstate(all="ignore"):
        logits, final = naive.run(cell, p64, x, s64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, window_final, _ = model.forward(p32, Window(x, x), s32)
        stepped = tuple(s.copy() for s in s32)
        stepper = stepwise.Stepper(model.pack(p32), stepped)
        for t in range(len(x)):
            np.testing.assert_allclose(stepper.step(x[t]), logits[t], rtol=1e-4, atol=1e-4)
    for a, b, c in zip(window_final, stepped, final):
        np.testing.assert_allclose(a, c, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b, c, rtol=1e-4, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(cell=st.sampled_from(CELL_NAMES), V=st.integers(2, 12), H=st.integers(1, 9), L=st.integers(1, 3),
       T=st.integers(1, 9), B=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_fast_forward_matches_naive_over_shapes(cell, V, H, L, T, B, seed):
    spec, params, state, rng = make(cell, V, H, L, B, seed=seed)
    x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    loss, final, cache = model.forward(params, Window(x, y), state)
    logits, naive_final = naive.run(cell, params, x, state)
    assert loss == pytest.approx(naive.loss(logits, y), rel=1e-10)
    for a, b in zip(final, naive_final):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    grads = model.backward(params, cache)
    for name, g in grads.items():
        assert g.shape == params[name].shape and np.all(np.isfinite(g))


@settings(max_examples=15, deadline=None)
@given(cell=st.sampled_from(CELL_NAMES), V=st.integers(2, 8), H=st.integers(1, 6), L=st.integers(1, 3),
       T=st.integers(1, 5), B=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_gradient_check_over_shapes(cell, V, H, L, T, B, seed):
    spec, params, state, rng = make(cell, V, H, L, B, seed=seed)
    x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    grads = model.backward(params, model.forward(params, Window(x, y), state)[2])
    name = sorted(params)[seed % len(params)]  # one parameter per example keeps this quick
    num = numeric_grad(lambda: model.forward(params, Window(x, y), state)[0], params[name])
    assert relative_error(grads[name], num) < 1e-6, name


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_single_step_reproduces_the_window(cell):
    spec, params, state, rng = make(cell, 8, 6, 2, 3)
    x = rng.integers(0, 8, (6, 3))
    logits, final = naive.run(cell, params, x, state)
    packed = model.pack(params)
    stepped = tuple(s.copy() for s in state)
    stepper = stepwise.Stepper(packed, stepped)
    for t in range(6):
        out = stepper.step(x[t])
        np.testing.assert_allclose(out, logits[t], rtol=1e-10, atol=1e-12)
    for a, b in zip(stepped, final):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("V, L, B, T", [(5, 1, 1, 1), (7, 1, 3, 7), (11, 2, 1, 7), (9, 3, 3, 7)])
def test_relu_rnn_gradients_match_finite_differences(V, L, B, T):
    spec, params, state, rng = make("rnn", V, 3, L, B, seed=V + L + B + T, scale=1.0)
    spec = model.Spec("rnn", V, 3, L, nonlinearity="relu")
    state = tuple(np.abs(s) for s in state)  # a ReLU layer's state is never negative
    x, y = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    packed = model.pack(params, spec)
    _, _, cache = model.forward(params, Window(x, y), state, packed=packed)
    assert any((hs[1:] == 0).any() and (hs[1:] > 0).any() for hs, _ in cache.layers)  # both sides of the kink
    grads = model.backward(params, cache)

    def loss():
        return model.forward(params, Window(x, y), state, packed=model.pack(params, spec))[0]

    for name in params:  # a step of 1e-6 crosses no unit's kink here (1e-3 does); its rounding is ~1e-10
        assert relative_error(grads[name], numeric_grad(loss, params[name], step=1e-6), floor=1e-3) < 1e-6, name


def test_relu_rnn_steps_as_its_window_and_differs_from_tanh():
    spec, params, state, rng = make("rnn", 6, 4, 2, 2)
    relu = model.Spec("rnn", 6, 4, 2, nonlinearity="relu")
    x = rng.integers(0, 6, (5, 2))
    packed = model.pack(params, relu)
    state = tuple(np.abs(s) for s in state)
    _, final, _ = model.forward(params, Window(x, x), state, packed=packed)
    stepped = tuple(s.copy() for s in state)
    stepper = stepwise.Stepper(packed, stepped)
    for t in range(5):
        stepper.step(x[t])
    np.testing.assert_allclose(stepped[0], final[0], rtol=1e-12)
    assert stepped[0].min() >= 0
    assert not np.allclose(model.forward(params, Window(x, x), state)[1][0], final[0])


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_reading_prompts_side_by_side_equals_stepping_each_alone(cell):
    spec, params, _, rng = make(cell, 7, 4, 2, 1)
    packed = model.pack(params)
    prompts = [rng.integers(0, 7, n) for n in (1, 9, 4, 13, 5)]
    state, logits = stepwise.read(packed, prompts, chunk=4)  # chunks end before, at and after prompts' ends
    for b, p in enumerate(prompts):
        alone = model.zero_state(spec, 1, np.float64)
        stepper = stepwise.Stepper(packed, alone)
        for x in p:
            expected = stepper.step(np.array([x]))
        np.testing.assert_allclose(logits[b], expected[0], rtol=1e-12, atol=1e-13)
        for s, a in zip(state, alone):
            np.testing.assert_allclose(s[:, b], a[:, 0], rtol=1e-12, atol=1e-13)


def test_parameters_are_named_and_shaped_like_pytorch():
    spec = model.Spec("lstm", 65, 32, 2)
    params = model.init_params(spec, np.random.default_rng(0))
    assert {k: v.shape for k, v in params.items()} == {
        "lstm.weight_ih_l0": (128, 65), "lstm.weight_hh_l0": (128, 32),
        "lstm.bias_ih_l0": (128,), "lstm.bias_hh_l0": (128,),
        "lstm.weight_ih_l1": (128, 32), "lstm.weight_hh_l1": (128, 32),
        "lstm.bias_ih_l1": (128,), "lstm.bias_hh_l1": (128,),
        "decoder.weight": (65, 32), "decoder.bias": (65,),
    }
    assert all(v.dtype == np.float32 for v in params.values())
    assert model.spec_of(params) == spec
    bound = 1 / np.sqrt(32)
    assert all(np.abs(v).max() <= bound for v in params.values())


def test_forget_bias_sets_the_total_forget_gate_bias():
    spec = model.Spec("lstm", 5, 4, 2)
    params = model.init_params(spec, np.random.default_rng(0), forget_bias=1.0)
    for k in range(2):
        total = params[f"lstm.bias_ih_l{k}"] + params[f"lstm.bias_hh_l{k}"]
        np.testing.assert_array_equal(total[4:8], 1.0)
        assert not np.allclose(total[:4], 1.0)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_spreads_the_forget_biases_and_closes_the_input_gate(cell):
    H, T_max = 64, 100
    spec = model.Spec(cell, 5, H, 2)
    plain = model.init_params(spec, np.random.default_rng(0))
    params = model.init_params(spec, np.random.default_rng(0), chrono=T_max)
    for k in range(2):
        b_ih, b_hh = params[f"{cell}.bias_ih_l{k}"], params[f"{cell}.bias_hh_l{k}"]
        forget = (b_ih + b_hh)[H : 2 * H]  # f in (i, f, g, o); z in (r, z, n)
        assert forget.min() >= 0 and forget.max() <= np.log(T_max - 1) + 1e-6
        assert forget.std() > 0.5  # spread over time scales, not one value
        if cell == "lstm":
            np.testing.assert_allclose((b_ih + b_hh)[:H], -forget, rtol=1e-6)
            changed = np.r_[0 : 2 * H]
        else:
            changed = np.r_[H : 2 * H]
        untouched = np.setdiff1d(np.arange(len(b_ih)), changed)
        np.testing.assert_array_equal(b_ih[untouched], plain[f"{cell}.bias_ih_l{k}"][untouched])
    for name in plain:  # the weights keep PyTorch's draws
        if "bias" not in name:
            np.testing.assert_array_equal(params[name], plain[name])


def test_orthogonal_recurrent_blocks():
    H = 16
    spec = model.Spec("lstm", 5, H, 2)
    params = model.init_params(spec, np.random.default_rng(0), orthogonal=True)
    for k in range(2):
        w = params[f"lstm.weight_hh_l{k}"].astype(np.float64)
        for g in range(4):
            block = w[g * H : (g + 1) * H]
            np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-5)
    assert model.init_params(spec, np.random.default_rng(0))["lstm.weight_hh_l0"].std() < params["lstm.weight_hh_l0"].std()


def test_open_gates_sets_the_input_and_output_biases_only():
    H = 4
    spec = model.Spec("lstm", 5, H, 2)
    plain = model.init_params(spec, np.random.default_rng(0))
    params = model.init_params(spec, np.random.default_rng(0), open_gates=2.0)
    for k in range(2):
        total = params[f"lstm.bias_ih_l{k}"] + params[f"lstm.bias_hh_l{k}"]
        np.testing.assert_array_equal(total[:H], 2.0)  # i
        np.testing.assert_array_equal(total[3 * H :], 2.0)  # o
        for name in (f"lstm.bias_ih_l{k}", f"lstm.bias_hh_l{k}"):
            np.testing.assert_array_equal(params[name][H : 3 * H], plain[name][H : 3 * H])  # f, g
    with pytest.raises(ValueError, match="no input and output gates"):
        model.init_params(model.Spec("gru", 5, 4, 1), np.random.default_rng(0), open_gates=1.0)


def test_a_vanilla_rnn_has_no_gate_to_bias():
    with pytest.raises(ValueError, match="no forget gate"):
        model.init_params(model.Spec("rnn", 5, 4, 1), np.random.default_rng(0), chrono=50)


def test_workspace_is_reused_across_windows():
    spec, params, state, rng = make("lstm", 6, 4, 2, 2, dtype=np.float32)
    x, y = rng.integers(0, 6, (5, 2)), rng.integers(0, 6, (5, 2))
    work = Workspace()
    model.backward(params, model.forward(params, Window(x, y), state, work)[2], work)
    arrays = {k: id(v) for k, v in work._arrays.items()}
    model.backward(params, model.forward(params, Window(x, y), state, work)[2], work)
    assert {k: id(v) for k, v in work._arrays.items()} == arrays


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_dropout_gradients_match_finite_differences_with_a_fixed_mask(cell):
    spec, params, state, rng = make(cell, 7, 4, 3, 3, seed=11)
    x, y = rng.integers(0, 7, (5, 3)), rng.integers(0, 7, (5, 3))

    def masks():  # the same masks at every call: a generator seeded the same way
        return model.Dropout(layers=0.3, output=0.25, seed=5)

    loss, _, cache = model.forward(params, Window(x, y), state, dropout=masks())
    assert loss != model.forward(params, Window(x, y), state)[0]
    grads = model.backward(params, cache)
    for name in params:
        num = numeric_grad(lambda: model.forward(params, Window(x, y), state, dropout=masks())[0], params[name])
        assert relative_error(grads[name], num) < 1e-6, name


def test_dropout_masks_are_inverted_bernoulli():
    a = np.ones((200, 50))
    rng = np.random.default_rng(0)
    dropped, m = dropout.apply(a, 0.25, rng)
    assert set(np.unique(m)) == {0.0, 1 / 0.75}
    assert abs((m == 0).mean() - 0.25) < 0.01 and abs(dropped.mean() - 1.0) < 0.02
    same, none = dropout.apply(a, 0.0, rng)
    assert same is a and none is None


def test_dropout_zero_is_no_dropout():
    spec, params, state, rng = make("lstm", 6, 4, 2, 2)
    x, y = rng.integers(0, 6, (4, 2)), rng.integers(0, 6, (4, 2))
    plain = model.forward(params, Window(x, y), state)[0]
    assert model.forward(params, Window(x, y), state, dropout=model.Dropout(0.0, 0.0, np.random.default_rng(1)))[0] == plain

"""A plain, step-by-step implementation of the model, written from PyTorch's documented equations with
no packing, fusing or buffers: the yardstick the fast code is checked against."""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def cell_step(cell, params, k, x_in, state):
    """One layer, one timestep. x_in (B, in); state: tuple of (B, H). Returns the new state tuple."""
    w_ih, w_hh = params[f"{cell}.weight_ih_l{k}"], params[f"{cell}.weight_hh_l{k}"]
    b_ih, b_hh = params[f"{cell}.bias_ih_l{k}"], params[f"{cell}.bias_hh_l{k}"]
    h = state[0]
    H = h.shape[1]
    a_x = x_in @ w_ih.T + b_ih
    a_h = h @ w_hh.T + b_hh
    if cell == "lstm":
        c = state[1]
        a = a_x + a_h
        i, f, g, o = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        c_new = f * c + i * g
        return (o * np.tanh(c_new), c_new)
    if cell == "gru":
        r = sigmoid(a_x[:, :H] + a_h[:, :H])
        z = sigmoid(a_x[:, H:2 * H] + a_h[:, H:2 * H])
        n = np.tanh(a_x[:, 2 * H:] + r * a_h[:, 2 * H:])
        return ((1 - z) * n + z * h,)
    return (np.tanh(a_x + a_h),)


def run(cell, params, x, state):
    """All layers over a window. x (T, B) ints; state: tuple of (L, B, H). Returns (logits (T, B, V), final state)."""
    V = params["decoder.weight"].shape[0]
    L = state[0].shape[0]
    layer_states = [tuple(s[k] for s in state) for k in range(L)]
    logits = []
    for t in range(x.shape[0]):
        inp = np.eye(V)[x[t]]
        for k in range(L):
            layer_states[k] = cell_step(cell, params, k, inp, layer_states[k])
            inp = layer_states[k][0]
        logits.append(inp @ params["decoder.weight"].T + params["decoder.bias"])
    final = tuple(np.stack([ls[j] for ls in layer_states]) for j in range(len(state)))
    return np.stack(logits), final


def loss(logits, y, mask=None):
    """Mean (or mask-weighted mean) of -log softmax(logits)[y]."""
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    nll = -np.take_along_axis(logp, y[..., None], axis=-1)[..., 0]
    if mask is None:
        return nll.mean()
    return (nll * mask).sum() / mask.sum()

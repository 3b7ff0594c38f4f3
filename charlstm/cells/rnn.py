"""Vanilla (Elman) recurrent layer, computed exactly as PyTorch's nn.RNN(nonlinearity="tanh") computes it.

    h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

The memory-less baseline: everything it remembers must survive repeated multiplication by W_hh.
Shapes: T timesteps, B streams, H hidden units.
"""

import numpy as np

GATES = 1
STATE = ("h",)
MEMORY = "h"
GATE_BLOCKS = {}
FORGET_GATE = None  # no gates
INPUT_GATE = None


def pack(w_ih, w_hh, b_ih, b_hh):
    """Weights for the forward pass: w_ihT (in, H), w_hhT (H, H), bias (H,)."""
    return {
        "w_ihT": np.ascontiguousarray(w_ih.T),
        "w_hhT": np.ascontiguousarray(w_hh.T),
        "bias": b_ih + b_hh,
    }


def step(gates, h_prev, w_hhT, h, rec):
    """One timestep: h = tanh(gates + h_prev @ W_hh^T); h may be h_prev. rec (B, H) is scratch."""
    np.matmul(h_prev, w_hhT, out=rec)
    np.add(gates, rec, out=h)
    np.tanh(h, out=h)


def advance(gates, state, packed, work, layer):
    """One timestep for sampling: state (h,), (B, H), is updated in place."""
    (h,) = state
    rec = work.get(f"rnn{layer}.step_rec", h.shape, h.dtype)
    step(gates, h, packed["w_hhT"], h, rec)
    return h


def forward(gates, state, packed, work, layer):
    """Run the window; gates (T, B, H) holds the input projection.

    Returns hs (T+1, B, H) with hs[0] the initial h, the final state (a copy) and the cache.
    """
    T, B, H = gates.shape
    hs = work.get(f"rnn{layer}.hs", (T + 1, B, H), gates.dtype)
    rec = work.get(f"rnn{layer}.rec", (B, H), gates.dtype)
    w_hhT = packed["w_hhT"]
    (hs[0],) = state
    for t in range(T):
        step(gates[t], hs[t], w_hhT, hs[t + 1], rec)
    return hs, (hs[T].copy(),), {"hs": hs}


def backward(cache, dhs, w_hh, work, layer):
    """Gradient of the pre-activation (T, B, H), the same on the input and the recurrent side."""
    hs = cache["hs"]
    T, B, H = dhs.shape
    dpre = work.get(f"rnn{layer}.dpre", (T, B, H), dhs.dtype)
    np.multiply(hs[1:], hs[1:], out=dpre)
    np.subtract(1, dpre, out=dpre)  # tanh'
    carry = work.zeros(f"rnn{layer}.carry", (B, H), dhs.dtype)  # gradient reaching h_t from step t+1
    for t in reversed(range(T)):
        carry += dhs[t]
        dpre[t] *= carry
        if t > 0:
            np.matmul(dpre[t], w_hh, out=carry)
    return dpre, dpre

"""Vanilla (Elman) recurrent layer, computed exactly as PyTorch's nn.RNN computes it.

    h' = φ(W_ih x + b_ih + W_hh h + b_hh)        φ = tanh (nonlinearity="tanh", the default) or max(0, ·)

The memory-less baseline: everything it remembers must survive repeated multiplication by W_hh. With
ReLU (`model.nonlinearity: relu`), the other remedy for vanishing gradients besides gates: its derivative
is 1 wherever a unit is on, so a signal that W_hh keeps is not squashed on the way.
Shapes: T timesteps, B streams, H hidden units.
"""

import numpy as np

GATES = 1
STATE = ("h",)
MEMORY = "h"
GATE_BLOCKS = {}
FORGET_GATE = None  # no gates
INPUT_GATE = None
OUTPUT_GATE = None
OPTIONS = ("nonlinearity",)  # the fields of model.Spec that `pack` takes
NONLINEARITIES = ("tanh", "relu")


def pack(w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """Weights for the forward pass: w_ihT (in, H), w_hhT (H, H), bias (H,), and relu (bool)."""
    return {
        "w_ihT": np.ascontiguousarray(w_ih.T),
        "w_hhT": np.ascontiguousarray(w_hh.T),
        "bias": b_ih + b_hh,
        "relu": nonlinearity == "relu",
    }


def step(gates, h_prev, w_hhT, h, rec, relu=False):
    """One timestep: h = φ(gates + h_prev @ W_hh^T); h may be h_prev. rec (B, H) is scratch."""
    np.matmul(h_prev, w_hhT, out=rec)
    np.add(gates, rec, out=h)
    if relu:
        np.maximum(h, 0, out=h)
    else:
        np.tanh(h, out=h)


def stepper(packed, state, below=None):
    """One timestep for sampling, as a function of a gates buffer (B, H): it updates the state (h,),
    (B, H), in place and returns h. The first layer's gates hold the input projection on entry; a
    layer above computes it from `below`, the (B, in) output of the layer under it. Scratch is made
    here, once."""
    (h,) = state
    w_ihT, w_hhT, bias, relu = packed["w_ihT"], packed["w_hhT"], packed["bias"], packed.get("relu", False)
    rec = np.zeros_like(h)

    def advance(gates):
        if below is not None:  # a layer above the first: its input projection, from the layer under it
            np.matmul(below, w_ihT, out=gates)
            np.add(gates, bias, out=gates)
        step(gates, h, w_hhT, h, rec, relu)
        return h

    return advance


def history(hs, cache):
    """The state after every step of a window, (T+1, B, H) per entry of STATE."""
    return (hs,)


def forward(gates, state, packed, work, layer, active=None):
    """Run the window; gates (T, B, H) holds the input projection.

    Returns hs (T+1, B, H) with hs[0] the initial h, the final state (a copy) and the cache.
    active: (T,) how many streams are still reading at each step, for a batch whose streams are sorted by
    length, longest first (model.forward arranges it); the rest are padding and are skipped, leaving
    their outputs as they were (finite; their targets weigh 0). None: every stream, every step.
    """
    T, B, H = gates.shape
    hs = work.get(f"rnn{layer}.hs", (T + 1, B, H), gates.dtype)
    rec = work.get(f"rnn{layer}.rec", (B, H), gates.dtype)
    w_hhT, relu = packed["w_hhT"], packed.get("relu", False)
    (hs[0],) = state
    for t in range(T):
        n = B if active is None else active[t]
        step(gates[t, :n], hs[t, :n], w_hhT, hs[t + 1, :n], rec[:n], relu)
    return hs, (hs[T].copy(),), {"hs": hs, "relu": relu, "active": active}


def backward(cache, dhs, w_hh, work, layer):
    """Gradient of the pre-activation (T, B, H), the same on the input and the recurrent side."""
    hs = cache["hs"]
    T, B, H = dhs.shape
    dpre = work.get(f"rnn{layer}.dpre", (T, B, H), dhs.dtype)
    if cache["relu"]:
        np.greater(hs[1:], 0, out=dpre)  # φ' = 1 where the unit is on (h > 0 exactly when its input is)
    else:
        np.multiply(hs[1:], hs[1:], out=dpre)
        np.subtract(1, dpre, out=dpre)  # tanh'
    carry = work.zeros(f"rnn{layer}.carry", (B, H), dhs.dtype)  # gradient reaching h_t from step t+1
    active = cache["active"]
    for t in reversed(range(T)):  # streams that have ended (see forward) are skipped, their gradient 0
        n = B if active is None else active[t]
        if n < B:
            dpre[t, n:] = 0
        carry[:n] += dhs[t, :n]
        dpre[t, :n] *= carry[:n]
        if t > 0:
            np.matmul(dpre[t, :n], w_hh, out=carry[:n])
    return dpre, dpre

"""Gated recurrent unit, computed exactly as PyTorch's nn.GRU computes it.

    r  = σ(W_ir x + b_ir + W_hr h + b_hr)              reset gate
    z  = σ(W_iz x + b_iz + W_hz h + b_hz)              update gate: how much of the old state to keep
    n  = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))     candidate state
    h' = (1 - z) ⊙ n + z ⊙ h

Parameters keep PyTorch's layout and gate order (r, z, n). The packed weights negate the r and z rows so
that σ(x) = 1 / (1 + e^-x) is one exp, one add and one reciprocal (vectorised where NumPy's float32 tanh
is not; see cells/lstm.py); b_hn stays apart because r multiplies it.

Shapes: T timesteps, B streams, H hidden units.
"""

import numpy as np

GATES = 3
STATE = ("h",)
MEMORY = "h"
GATE_BLOCKS = {"reset": 0, "update": 1}  # activations in (r, z, n)
FORGET_GATE = 1  # block of z in (r, z, n): the update gate, which keeps the old state
INPUT_GATE = None  # writing is tied to z: h' = (1 - z) n + z h
OUTPUT_GATE = None  # the state is the output


def pack(w_ih, w_hh, b_ih, b_hh):
    """Weights for the forward pass: w_ihT (in, 3H), w_hhT (H, 3H), bias (3H,) and b_hn (H,)."""
    H = w_hh.shape[1]
    scale = np.ones(3 * H, dtype=w_hh.dtype)
    scale[: 2 * H] = -1.0
    bias = b_ih.copy()
    bias[: 2 * H] += b_hh[: 2 * H]
    return {
        "w_ihT": np.ascontiguousarray((w_ih * scale[:, None]).T),
        "w_hhT": np.ascontiguousarray((w_hh * scale[:, None]).T),
        "bias": bias * scale,
        "b_hn": b_hh[2 * H :].copy(),
    }


def step(gates, h_prev, w_hhT, b_hn, h, hn, rec, tmp):
    """One timestep, in place. gates (B, 3H): packed input projection in, activations (r, z, n) out.

    h and hn (B, H) receive h' and W_hn h + b_hn; rec (B, 3H) and tmp (B, H) are scratch.
    h may be h_prev: h_prev is last read when h is written. Call it under np.errstate(over="ignore"):
    a saturated gate's e^-x overflows to inf, which gives it exactly 0.
    """
    H = h.shape[1]
    np.matmul(h_prev, w_hhT, out=rec)
    rz = gates[:, : 2 * H]
    rz += rec[:, : 2 * H]  # -x
    np.exp(rz, out=rz)
    rz += 1
    np.reciprocal(rz, out=rz)  # σ(x)
    r, z, n = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H :]
    np.add(rec[:, 2 * H :], b_hn, out=hn)
    np.multiply(r, hn, out=tmp)
    n += tmp
    np.tanh(n, out=n)
    np.subtract(h_prev, n, out=h)
    h *= z
    h += n


def stepper(packed, state, below=None):
    """One timestep for sampling, as a function of a gates buffer (B, 3H): it updates the state (h,),
    (B, H), in place and returns h. The first layer's gates hold the packed input projection on entry;
    a layer above computes it from `below`, the (B, in) output of the layer under it. The GRU's
    candidate scales its recurrent product by r, so the two products cannot be one as in the LSTM's
    stepper. Scratch is made here, once. Call it under np.errstate(over="ignore"), as `step`."""
    (h,) = state
    B, H = h.shape
    w_ihT, w_hhT, bias, b_hn = packed["w_ihT"], packed["w_hhT"], packed["bias"], packed["b_hn"]
    hn, tmp = np.zeros_like(h), np.zeros_like(h)
    rec = np.zeros((B, GATES * H), h.dtype)

    def advance(gates):
        if below is not None:  # a layer above the first: its input projection, from the layer under it
            np.matmul(below, w_ihT, out=gates)
            np.add(gates, bias, out=gates)
        step(gates, h, w_hhT, b_hn, h, hn, rec, tmp)
        return h

    return advance


def history(hs, cache):
    """The state after every step of a window, (T+1, B, H) per entry of STATE."""
    return (hs,)


def forward(gates, state, packed, work, layer, active=None):
    """Run the window; gates (T, B, 3H) holds the packed input projection and is overwritten.

    Returns hs (T+1, B, H) with hs[0] the initial h, the final state (a copy) and the cache.
    active: (T,) how many streams are still reading at each step, for a batch whose streams are sorted by
    length, longest first (model.forward arranges it); the rest are padding and are skipped, leaving
    their outputs as they were (finite; their targets weigh 0). None: every stream, every step.
    """
    T, B, G = gates.shape
    H = G // GATES
    dtype = gates.dtype
    hs = work.get(f"gru{layer}.hs", (T + 1, B, H), dtype)
    hn = work.get(f"gru{layer}.hn", (T, B, H), dtype)
    rec = work.get(f"gru{layer}.rec", (B, G), dtype)
    tmp = work.get(f"gru{layer}.tmp", (B, H), dtype)
    w_hhT, b_hn = packed["w_hhT"], packed["b_hn"]
    (hs[0],) = state
    with np.errstate(over="ignore"):
        for t in range(T):
            n = B if active is None else active[t]
            step(gates[t, :n], hs[t, :n], w_hhT, b_hn, hs[t + 1, :n], hn[t, :n], rec[:n], tmp[:n])
    return hs, (hs[T].copy(),), {"gates": gates, "hs": hs, "hn": hn, "active": active}


def backward(cache, dhs, w_hh, work, layer):
    """Gradients of the input-side and recurrent-side pre-activations, each (T, B, 3H), order (r, z, n).

    dhs (T, B, H) is the loss gradient of every output h_t. They differ only in the n block, where the
    recurrent side is scaled by r. Nothing flows into the initial state.
    """
    gates, hs, hn, active = cache["gates"], cache["hs"], cache["hn"], cache["active"]
    T, B, G = gates.shape
    H = G // GATES
    dtype = gates.dtype
    r, z, n = (gates[:, :, k * H : (k + 1) * H] for k in range(3))  # (T, B, H) each

    # Local derivatives for the whole window, stored in the gradient buffer; the loop multiplies by dh_t.
    dx = work.get(f"gru{layer}.dx", (T, B, G), dtype)
    d = dx.reshape(T, B, GATES, H)
    d_r, d_z, d_n = d[:, :, 0], d[:, :, 1], d[:, :, 2]
    np.multiply(n, n, out=d_n)
    np.subtract(1, d_n, out=d_n)
    np.subtract(1, z, out=d_r)  # d_r as scratch
    d_n *= d_r  # ∂h'/∂n_pre = (1 - z) ⊙ tanh'(n)
    np.subtract(1, z, out=d_z)
    d_z *= z
    np.subtract(hs[:-1], n, out=d_r)
    d_z *= d_r  # ∂h'/∂z_pre = (h - n) ⊙ σ'(z)
    np.subtract(1, r, out=d_r)
    d_r *= r
    d_r *= hn  # ∂n_pre/∂r_pre = (W_hn h + b_hn) ⊙ σ'(r); times ∂h'/∂n_pre in the loop

    dh_side = work.get(f"gru{layer}.dh_side", (T, B, G), dtype)
    dh = work.get(f"gru{layer}.dh", (B, H), dtype)
    carry = work.zeros(f"gru{layer}.carry", (B, H), dtype)  # gradient reaching h_t from step t+1
    tmp = work.get(f"gru{layer}.tmp", (B, H), dtype)
    for t in reversed(range(T)):  # streams that have ended (see forward) are skipped, their gradient 0
        m = B if active is None else active[t]
        if m < B:
            d[t, m:] = 0
            dh_side[t, m:] = 0
        np.add(dhs[t, :m], carry[:m], out=dh[:m])
        d[t, :m, 1:] *= dh[:m, None, :]  # z, n
        d[t, :m, 0] *= d[t, :m, 2]  # r
        e = dh_side[t, :m].reshape(m, GATES, H)
        e[:, :2] = d[t, :m, :2]
        np.multiply(d[t, :m, 2], r[t, :m], out=e[:, 2])
        if t > 0:
            np.matmul(dh_side[t, :m], w_hh, out=carry[:m])  # back through W_hh
            np.multiply(dh[:m], z[t, :m], out=tmp[:m])  # back through z ⊙ h
            carry[:m] += tmp[:m]
    return dx, dh_side

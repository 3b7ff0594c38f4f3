"""Long short-term memory, computed exactly as PyTorch's nn.LSTM computes it.

    i  = σ(W_ii x + b_ii + W_hi h + b_hi)        input gate: how much of the candidate to write
    f  = σ(W_if x + b_if + W_hf h + b_hf)        forget gate: how much of the old memory to keep
    g  = tanh(W_ig x + b_ig + W_hg h + b_hg)     candidate memory
    o  = σ(W_io x + b_io + W_ho h + b_ho)        output gate: how much of the memory to show
    c' = f ⊙ c + i ⊙ g                           memory (cell state)
    h' = o ⊙ tanh(c')                            hidden state, the layer's output

Parameters keep PyTorch's layout: rows of weight_ih / weight_hh / biases in gate order (i, f, g, o).

Speed: the packed weights used by the forward pass put the gates in the order (i, f, o, g) and scale
the i, f, o rows by -1 and the g rows by -2, so that one exp, one add and one reciprocal over all 4H
pre-activations give σ(x) = 1 / (1 + e^-x) for the three gates and σ(2x) for the candidate, which is
tanh(x) = 2σ(2x) - 1 after a multiply and a subtract on its H. On an AVX2 host NumPy 2.4's float32 exp
(3.8 ns an element, no vectorised loop) still beats its tanh (7.2 ns, vectorised but table-driven): this
takes about 60% of the time of one tanh over the gates (docs/performance.md).
Where e^-x overflows, the gate is 0, as it should be. The backward pass works in PyTorch's order on the
activations, so gradients need no translation.

Shapes: T timesteps, B streams, H hidden units; `in` is the layer's input size.
"""

import numpy as np

GATES = 4
STATE = ("h", "c")
MEMORY = "c"
GATE_BLOCKS = {"input": 0, "forget": 1, "output": 2}  # activations in (i, f, o, g)
FORGET_GATE = 1  # block of f in PyTorch's order (i, f, g, o): the gate that keeps the memory
INPUT_GATE = 0  # block of i: the gate that writes it
OUTPUT_GATE = 3  # block of o: the gate that reads it out


def pack(w_ih, w_hh, b_ih, b_hh):
    """Weights for the forward pass: w_ihT (in, 4H), w_hhT (H, 4H), bias (4H,), in order (i, f, o, g),
    scaled by (-1, -1, -1, -2) so that the step's exp sees -x for the sigmoids and -2x for g."""
    H = w_hh.shape[1]
    return {"w_ihT": _arranged(w_ih, H), "w_hhT": _arranged(w_hh, H), "bias": _arranged((b_ih + b_hh)[:, None], H)[0]}


def _arranged(w, H):
    """w (4H, n) in PyTorch's order as (n, 4H) in the packed order and scale: three passes that read w
    transposed and write the result once (the exact products by -1 and -2), where reordering, scaling
    and transposing one after the other made two temporaries: half the time (docs/performance.md)."""
    out = np.empty(w.shape[::-1], w.dtype)
    np.negative(w[: 2 * H].T, out=out[:, : 2 * H])  # i, f
    np.negative(w[3 * H :].T, out=out[:, 2 * H : 3 * H])  # o
    np.multiply(w[2 * H : 3 * H].T, -2, out=out[:, 3 * H :])  # g
    return out


def step(gates, h_prev, c_prev, w_hhT, h, c, tanh_c, rec):
    """One timestep, in place, for B streams at once: the training forward pass's, and sampling's first layer.

    gates (B, 4H): on entry the packed input projection of x, on exit the activations (i, f, o, g).
    h, c, tanh_c (B, H) receive h', c' and tanh(c'); rec (B, 4H) is scratch. Call it under
    np.errstate(over="ignore"): a gate's e^-x may overflow, which is right.
    """
    np.matmul(h_prev, w_hhT, out=rec)
    gates += rec  # -x for i, f, o; -2x for g
    activate(gates, c_prev, h, c, tanh_c)


def activate(gates, c_prev, h, c, tanh_c):
    """The rest of a timestep once gates (B, 4H) hold the whole packed pre-activation: the activations
    (i, f, o, g) in gates, h', c' and tanh(c') in h, c, tanh_c (B, H); c may be c_prev."""
    H = h.shape[1]
    np.exp(gates, out=gates)  # inf where it overflows (the callers ignore the warning): the gate is then 0
    gates += 1
    np.reciprocal(gates, out=gates)  # σ(x) for i, f, o; σ(2x) for g
    i, f, o, g = gates[:, :H], gates[:, H : 2 * H], gates[:, 2 * H : 3 * H], gates[:, 3 * H :]
    g *= 2
    g -= 1  # tanh(x) = 2σ(2x) - 1
    np.multiply(f, c_prev, out=c)
    np.multiply(i, g, out=tanh_c)  # tanh_c doubles as scratch for i ⊙ g
    c += tanh_c
    np.tanh(c, out=tanh_c)
    np.multiply(o, tanh_c, out=h)


def stepper(packed, state, below=None):
    """One timestep for sampling, as a function of a gates buffer (B, 4H): it updates the state (h, c),
    each (B, H), in place and returns h. Its scratch is made here, once, not once per character. Call
    it under np.errstate(over="ignore"), as `step`.

    The first layer's gates hold the packed input projection on entry. A layer above reads `below`, the
    (B, in) output of the layer under it, and computes its whole pre-activation as one product of
    [below, h, 1] with its input weights, recurrent weights and bias stacked (in + H + 1, 4H): one call
    and one pass over the weights instead of two products and two adds: sampling at batch 1 with two
    layers of 256 ran 5% faster, at batch 64 25% (docs/performance.md, 2026-12-06). The sum's order
    differs from the forward pass's, so that layer's rounding does."""
    h, c = state
    B, H = h.shape
    tanh_c = np.zeros_like(h)
    if below is None:
        w_hhT = packed["w_hhT"]
        rec = np.zeros((B, GATES * H), h.dtype)

        def advance(gates):
            step(gates, h, c, w_hhT, h, c, tanh_c, rec)  # h_prev is read before h is written
            return h

        return advance
    n = below.shape[1]
    stacked = np.concatenate([packed["w_ihT"], packed["w_hhT"], packed["bias"][None]])  # (n + H + 1, 4H)
    both = np.ones((B, n + H + 1), h.dtype)  # [below, h, 1]

    def advance(gates):
        both[:, :n] = below
        both[:, n : n + H] = h
        np.matmul(both, stacked, out=gates)
        activate(gates, c, h, c, tanh_c)
        return h

    return advance


def history(hs, cache):
    """The state after every step of a window, (T+1, B, H) per entry of STATE."""
    return hs, cache["cs"]


def forward(gates, state, packed, work, layer, active=None):
    """Run the window. gates (T, B, 4H) holds the packed input projection and is overwritten.

    Returns hs (T+1, B, H) with hs[0] the initial h, the final state (copies, safe to carry into the
    next window) and the cache for backward.
    active: (T,) how many streams are still reading at each step, for a batch whose streams are sorted by
    length, longest first (model.forward arranges it); the rest are padding and are skipped, leaving
    their outputs as they were (finite; their targets weigh 0). None: every stream, every step.
    """
    T, B, G = gates.shape
    H = G // GATES
    dtype = gates.dtype
    hs = work.get(f"lstm{layer}.hs", (T + 1, B, H), dtype)
    cs = work.get(f"lstm{layer}.cs", (T + 1, B, H), dtype)
    tanh_c = work.get(f"lstm{layer}.tanh_c", (T, B, H), dtype)
    rec = work.get(f"lstm{layer}.rec", (B, G), dtype)
    w_hhT = packed["w_hhT"]
    hs[0], cs[0] = state
    with np.errstate(over="ignore"):
        for t in range(T):
            n = B if active is None else active[t]
            step(gates[t, :n], hs[t, :n], cs[t, :n], w_hhT, hs[t + 1, :n], cs[t + 1, :n], tanh_c[t, :n], rec[:n])
    cache = {"gates": gates, "cs": cs, "tanh_c": tanh_c, "active": active}
    return hs, (hs[T].copy(), cs[T].copy()), cache


def backward(cache, dhs, w_hh, work, layer):
    """Gradients of the pre-activations, given dhs (T, B, H), the loss gradient of every output h_t.

    Returns (dx, dh): both (T, B, 4H) in PyTorch's gate order, for the input-side and recurrent-side
    pre-activations. In an LSTM both sides enter the gates the same way, so they are one array.
    Nothing flows into the initial state: truncated backpropagation through time.

    The window runs backwards in chunks of about CHUNK_BYTES of gates: each chunk's local derivatives
    are computed just before the time loop reaches it, so both find the chunk in the cache. Over the
    whole window at once, those passes over strided (T, B, H) blocks missed it: 6.7 against 4.2 ms a
    layer for M's shapes, 43 against 24 for L's (docs/performance.md, 2026-12-06).
    """
    gates, cs, tanh_c, active = cache["gates"], cache["cs"], cache["tanh_c"], cache["active"]
    T, B, G = gates.shape
    H = G // GATES
    dtype = gates.dtype
    f = gates[:, :, H : 2 * H]  # (T, B, H)
    dgates = work.get(f"lstm{layer}.dgates", (T, B, G), dtype)
    d = dgates.reshape(T, B, GATES, H)
    dc_dh = work.get(f"lstm{layer}.dc_dh", (T, B, H), dtype)
    dh = work.get(f"lstm{layer}.dh", (B, H), dtype)
    dc = work.zeros(f"lstm{layer}.dc", (B, H), dtype)  # holds f_{t+1} ⊙ dc_{t+1} on entry to step t
    carry = work.zeros(f"lstm{layer}.carry", (B, H), dtype)  # gradient reaching h_t from step t+1
    chunk = max(1, CHUNK_BYTES // gates[0].nbytes)
    for end in range(T, 0, -chunk):
        steps = slice(max(0, end - chunk), end)
        _local_derivatives(gates[steps], cs[steps], tanh_c[steps], d[steps], dc_dh[steps])
        for t in reversed(range(steps.start, end)):  # streams that have ended (see forward) are skipped, their gradient 0
            n = B if active is None else active[t]
            if n < B:
                d[t, n:] = 0
            np.add(dhs[t, :n], carry[:n], out=dh[:n])
            np.multiply(dh[:n], dc_dh[t, :n], out=carry[:n])  # carry as scratch
            dc[:n] += carry[:n]
            d[t, :n, 3] *= dh[:n]  # o
            d[t, :n, :3] *= dc[:n, None, :]  # i, f, g
            if t > 0:
                np.matmul(dgates[t, :n], w_hh, out=carry[:n])  # (n, 4H) @ (4H, H): back through W_hh
                dc[:n] *= f[t, :n]
    return dgates, dgates


CHUNK_BYTES = 1 << 20  # the gates of a chunk of steps: 16 steps of M (batch 16 a worker), 4 of L (batch 32)


def _local_derivatives(gates, c_prev, tanh_c, d, dc_dh):
    """For a run of steps, written in place: d (steps, B, 4, H) the derivatives of c (for i, f, g) and of
    h (for o) with respect to each gate's pre-activation, in PyTorch's order; dc_dh (steps, B, H) the
    derivative of h with respect to c. The time loop then only multiplies them by dc_t or dh_t."""
    H = c_prev.shape[-1]
    i, f, o, g = (gates[:, :, k * H : (k + 1) * H] for k in range(4))  # activations, packed order
    d_i, d_f, d_g, d_o = d[:, :, 0], d[:, :, 1], d[:, :, 2], d[:, :, 3]
    np.subtract(1, i, out=d_i)
    d_i *= i
    d_i *= g  # ∂c/∂i_pre = g ⊙ σ'(i)
    np.subtract(1, f, out=d_f)
    d_f *= f
    d_f *= c_prev  # ∂c/∂f_pre = c_prev ⊙ σ'(f)
    np.multiply(g, g, out=d_g)
    np.subtract(1, d_g, out=d_g)
    d_g *= i  # ∂c/∂g_pre = i ⊙ tanh'(g)
    np.subtract(1, o, out=d_o)
    d_o *= o
    d_o *= tanh_c  # ∂h/∂o_pre = tanh(c) ⊙ σ'(o)
    np.multiply(tanh_c, tanh_c, out=dc_dh)
    np.subtract(1, dc_dh, out=dc_dh)
    dc_dh *= o  # ∂h/∂c = o ⊙ tanh'(c)

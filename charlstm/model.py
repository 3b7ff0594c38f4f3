"""The character language model: one-hot characters -> L recurrent layers -> linear decoder -> softmax.

Dimensions, named once for the whole package:
    T  window length (timesteps)        V  vocabulary size
    B  parallel streams (batch)         H  hidden size
    L  layers                           G  pre-activation width of a layer: gates per cell × H

    h_t^0    = cell(onehot(x_t), h_{t-1}^0)     onehot(x) @ W_ih^T is a gather of W_ih's columns
    h_t^k    = cell(h_t^{k-1},   h_{t-1}^k)     k = 1 .. L-1
    logits_t = W_dec h_t^{L-1} + b_dec          (V,)
    loss     = mean over t and streams of -log softmax(logits_t)[y_t]

The cell (LSTM, GRU or vanilla RNN) is a module from charlstm.cells; nothing here depends on which.

Parameters are a dict of arrays keyed exactly like the state_dict of this PyTorch module, so a
checkpoint loads into PyTorch with `load_state_dict` (see README):

    class CharModel(torch.nn.Module):
        def __init__(self, V, H, L):
            super().__init__()
            self.lstm = torch.nn.LSTM(input_size=V, hidden_size=H, num_layers=L)
            self.decoder = torch.nn.Linear(H, V)

(a GRU or vanilla-RNN model names its recurrent module after the cell: `self.gru = nn.GRU(...)`,
`self.rnn = nn.RNN(...)`, so its keys start with gru. or rnn.)

    lstm.weight_ih_l{k} (G, V for k = 0, else H)    lstm.bias_ih_l{k} (G,)
    lstm.weight_hh_l{k} (G, H)                      lstm.bias_hh_l{k} (G,)
    decoder.weight      (V, H)                      decoder.bias      (V,)

Gradients come back in a dict with the same keys; the recurrent state is a tuple with one (L, B, H)
array per entry of the cell's STATE, (h, c) for an LSTM, as PyTorch passes it. What a window's forward
pass reads comes as a data.Window (x, y and mask), and what it leaves for backward as a Cache. Reading
prompts and advancing a character at a time, for sampling, are stepwise.py's.
"""

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from . import pointer
from .cells import CELLS
from .dropout import Dropout
from .dropout import apply as _dropout
from .workspace import Workspace


@dataclass(frozen=True)
class Spec:
    """The architecture, all a set of parameters needs to be rebuilt."""

    cell: str  # a name in cells.CELLS
    vocab: int  # V
    hidden: int  # H
    layers: int  # L
    nonlinearity: str = "tanh"  # a vanilla RNN's activation: tanh or relu (a cell that takes it: OPTIONS)
    pointer: int = 0  # d, the width of the pointer's queries and keys (pointer.py); 0: no pointer
    # positions the pointer looks back over while sampling (training: its window); not the architecture
    pointer_window: int = field(default=256, compare=False)

    @classmethod
    def of(cls, model_config, vocab, window=256):
        """The architecture a config's model section describes, for a vocabulary of `vocab` characters;
        window: data.window, how far back the pointer looks while sampling."""
        m = model_config
        return cls(m.cell, vocab, m.hidden, m.layers, m.nonlinearity, m.pointer, window)


def param_shapes(spec):
    """The name and shape of every parameter, in a fixed order."""
    G = CELLS[spec.cell].GATES * spec.hidden
    shapes = {}
    for k in range(spec.layers):
        n_in = spec.vocab if k == 0 else spec.hidden
        shapes[f"{spec.cell}.weight_ih_l{k}"] = (G, n_in)
        shapes[f"{spec.cell}.weight_hh_l{k}"] = (G, spec.hidden)
        shapes[f"{spec.cell}.bias_ih_l{k}"] = (G,)
        shapes[f"{spec.cell}.bias_hh_l{k}"] = (G,)
    shapes["decoder.weight"] = (spec.vocab, spec.hidden)
    shapes["decoder.bias"] = (spec.vocab,)
    if spec.pointer:
        shapes.update(pointer.param_shapes(spec.pointer, spec.hidden))
    return shapes


def spec_of(params):
    """Read the architecture off the parameter names and shapes."""
    cell = next(name.split(".")[0] for name in params if name.split(".")[0] in CELLS)
    vocab, hidden = params["decoder.weight"].shape
    layers = sum(1 for name in params if name.startswith(f"{cell}.weight_hh_l"))
    width = params["pointer.query.weight"].shape[0] if "pointer.query.weight" in params else 0
    return Spec(cell, vocab, hidden, layers, pointer=width)


def init_params(spec, rng, dtype=np.float32, forget_bias=None, chrono=0, orthogonal=False, open_gates=None):
    """PyTorch's default initialisation: every weight and bias uniform in (-1/sqrt(H), 1/sqrt(H)), then:

    forget_bias: the forget gate's total bias (bias_ih + bias_hh) set to this value: the gate starts open,
        so the memory survives early training (Jozefowicz et al. 2015). For a GRU it is the update gate z,
        whose opening keeps the old state.
    chrono: T_max of the chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural networks warp
        time?"): every unit's forget bias log(u), u ~ U(1, T_max - 1), so memories start with time scales
        spread up to T_max characters, and (LSTM) its input bias -log(u), so a unit that keeps long also
        writes little. A GRU's update gate takes the forget bias (its write is tied to it).
    open_gates: the LSTM's input and output gates' total bias set to this value, so that from the start
        the cell writes to its memory and shows it (a positive value opens them; PyTorch's init leaves both
        half open on average).
    orthogonal: each gate's block of W_hh a random orthogonal matrix (Saxe et al. 2014), so the recurrent
        map neither shrinks nor blows up a state at the start.
    A vanilla RNN has no gate to bias. The default draws are the same whatever the options (they draw
    after them), so a run changes only in what the options name.
    """
    bound = 1.0 / np.sqrt(spec.hidden)
    params = {
        name: rng.uniform(-bound, bound, size=shape).astype(dtype)
        for name, shape in param_shapes(spec).items()
    }
    H = spec.hidden
    forget = CELLS[spec.cell].FORGET_GATE  # the block that keeps the old state; None for a vanilla RNN
    if (forget_bias is not None or chrono) and forget is None:
        raise ValueError(f"a {spec.cell} has no forget gate to bias")
    opened = [CELLS[spec.cell].INPUT_GATE, getattr(CELLS[spec.cell], "OUTPUT_GATE", None)]
    if open_gates is not None and None in opened:
        raise ValueError(f"a {spec.cell} has no input and output gates to open")
    for k in range(spec.layers):
        b_ih, b_hh = params[f"{spec.cell}.bias_ih_l{k}"], params[f"{spec.cell}.bias_hh_l{k}"]
        if forget_bias is not None:
            b_ih[forget * H : (forget + 1) * H] = forget_bias
            b_hh[forget * H : (forget + 1) * H] = 0
        if chrono:
            keep = np.log(rng.uniform(1, max(chrono - 1, 1 + 1e-6), size=H))  # (H,)
            b_ih[forget * H : (forget + 1) * H] = keep
            b_hh[forget * H : (forget + 1) * H] = 0
            write = CELLS[spec.cell].INPUT_GATE
            if write is not None:
                b_ih[write * H : (write + 1) * H] = -keep
                b_hh[write * H : (write + 1) * H] = 0
        if open_gates is not None:
            for gate in opened:
                b_ih[gate * H : (gate + 1) * H] = open_gates
                b_hh[gate * H : (gate + 1) * H] = 0
        if orthogonal:
            w_hh = params[f"{spec.cell}.weight_hh_l{k}"]  # (G, H): one H x H block per gate
            for g in range(w_hh.shape[0] // H):
                w_hh[g * H : (g + 1) * H] = _random_orthogonal(H, rng)
    return params


def _random_orthogonal(n, rng):
    """An n x n orthogonal matrix drawn uniformly (QR of a Gaussian matrix, signs fixed by R's diagonal)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def zero_state(spec, batch, dtype=np.float32):
    """The state at the start of a text: zeros, one (L, B, H) array per state variable."""
    shape = (spec.layers, batch, spec.hidden)
    return tuple(np.zeros(shape, dtype) for _ in CELLS[spec.cell].STATE)


@dataclass(frozen=True, eq=False)
class Packed:
    """The weights arranged for the forward pass and sampling (see `pack`), with their architecture."""

    spec: Spec
    layers: tuple  # per layer, the arrays of its cell's `pack`
    table: np.ndarray  # (V, G): the first layer's input projection of each character, biases included
    decoder_wT: np.ndarray  # (H, V)
    decoder_b: np.ndarray  # (V,)
    pointer: Optional[dict] = None  # the pointer's parameters (pointer.py), when the model has one


def pack(params, spec=None):
    """Arrange the weights for the forward pass (see each cell's `pack`), once per parameter update.
    spec: the architecture, read off the parameter names when not given.

    The first layer's input projection of a one-hot x is column x of W_ih plus the biases, so the
    packed first layer is a lookup table (V, G) and its input projection is a gather.
    """
    spec = spec_of(params) if spec is None else spec
    cell = CELLS[spec.cell]
    options = {name: getattr(spec, name) for name in getattr(cell, "OPTIONS", ())}
    layers = []
    for k in range(spec.layers):
        p = [params[f"{spec.cell}.{w}_l{k}"] for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        layers.append(cell.pack(*p, **options))
    table = layers[0]["w_ihT"] + layers[0]["bias"]  # (V, G)
    decoder_wT = np.ascontiguousarray(params["decoder.weight"].T)  # (H, V)
    pointed = {k: v for k, v in params.items() if k.startswith("pointer.")} if spec.pointer else None
    return Packed(spec, tuple(layers), table, decoder_wT, params["decoder.bias"], pointed)


@dataclass(eq=False)
class Cache:
    """What the forward pass of a window leaves for `backward`: post-activations, so nothing is recomputed."""

    spec: Spec
    x: np.ndarray  # (T, B) inputs
    y: np.ndarray  # (T, B) targets
    layers: list  # per layer: (hs (T+1, B, H), the cell's own cache)
    probs: np.ndarray  # (T·B, V) softmax, a workspace buffer that backward overwrites
    weight: Any  # each position's share of the loss: 1 / total, or (T·B, 1) mask / total
    inputs: list  # per layer, its input (T·B, H) after dropout; None for the first (a gather)
    masks: list  # per layer, the dropout mask of its input, or None
    top: np.ndarray  # (T·B, H): the last layer's output after dropout, the decoder's input
    top_mask: Optional[np.ndarray]  # its dropout mask, or None
    pointed: Optional[pointer.Cache] = None  # the pointer's, when the model has one
    stream_nll: Optional[np.ndarray] = None  # (B,) each stream's summed -log p over its mask, float64


def forward(params, window, state, work=None, dropout=None, packed=None, total=None):
    """The mean loss over a window of T characters in B streams.

    window: a data.Window: inputs x and targets y (T, B), and a mask (T, B), 0 where a target is
    padding, or None; with a mask the loss is the weighted mean.
    state: the carried state from the previous window (or `zero_state`).
    dropout: optional Dropout, for training.
    packed: pack(params), when the caller has it (many windows with the same weights, or the spec known).
    total: divide the summed loss by this rather than by the number of targets here (for a slice of a
    batch whose loss is averaged over the whole batch; see parallel.py).
    Returns (loss, final state to carry into the next window, cache for `backward`).
    """
    work = Workspace() if work is None else work
    packed = pack(params) if packed is None else packed
    spec = packed.spec
    x, y, mask = window
    T, B = x.shape
    N, H, V = T * B, spec.hidden, spec.vocab
    dtype = params["decoder.weight"].dtype
    drop = dropout or Dropout()
    rng = drop.generator() if drop.layers or drop.output else None
    order, lengths = packing(mask)
    if order is not None:  # streams longest first, so that those still reading are a prefix at every step
        x, y, mask = x[:, order], y[:, order], mask[:, order]
        state = tuple(s[:, order] for s in state)

    layer_caches, inputs, masks, new_state = run_layers(packed, x, state, work, drop, rng, lengths)
    if order is not None:
        new_state = tuple(s[:, np.argsort(order)] for s in new_state)
    hs = layer_caches[-1][0]

    top, top_mask = _dropout(hs[1:].reshape(N, H), drop.output, rng)  # (T·B, H)
    probs = work.get("probs", (N, V), dtype)  # logits first, then probabilities
    np.matmul(top, packed.decoder_wT, out=probs)
    probs += packed.decoder_b
    probs -= probs.max(axis=1, keepdims=True)
    target_logit = probs[np.arange(N), y.reshape(-1)]
    np.exp(probs, out=probs)
    sums = probs.sum(axis=1)
    nll = np.log(sums) - target_logit  # (T·B,) -log p(y_t)
    probs /= sums[:, None]
    pointed = None
    if spec.pointer:  # the decoder's prediction mixed with copies of what followed earlier positions
        nll, pointed = pointer.forward(params, top, y, probs)
    counted = nll if mask is None else nll * mask.reshape(-1)
    if mask is None:
        total = total or N
        weight = 1.0 / total
    else:
        total = total or float(mask.sum(dtype=np.float64)) or 1.0  # an all-padding window has loss 0
        weight = (mask.reshape(-1, 1) / total).astype(dtype)  # (T·B, 1)
    loss = float(counted.sum(dtype=np.float64)) / total
    stream_nll = counted.reshape(T, B).sum(axis=0, dtype=np.float64)
    if order is not None:
        stream_nll = stream_nll[np.argsort(order)]

    return loss, new_state, Cache(spec, x, y, layer_caches, probs, weight, inputs, masks, top, top_mask, pointed,
                                  stream_nll)


def packing(mask):
    """For a window whose every stream is padded at its end (mask (T, B) of 1s then 0s, as in lines mode
    and in scoring texts of different lengths): the order of the streams, longest first (None if they
    already are), and their lengths in that order, (B,). (None, None) for any other mask or none: then
    every stream runs every step. Sorted, the streams still reading at step t are the first
    count(lengths > t), and the cells skip the rest (see cells/lstm.py `forward`): in lines mode every
    line shorter than its batch's longest is padded to it."""
    if mask is None:
        return None, None
    T, B = mask.shape
    lengths = np.count_nonzero(mask, axis=0)  # (B,)
    if not np.array_equal(mask != 0, np.arange(T)[:, None] < lengths[None, :]) or lengths.min() == T:
        return None, None
    order = np.argsort(-lengths, kind="stable")
    if np.array_equal(order, np.arange(B)):
        order = None
    return order, lengths if order is None else lengths[order]


def run_layers(packed, x, state, work, drop=None, rng=None, lengths=None):
    """The recurrent layers over a window x (T, B) from `state`. Returns per layer (hs (T+1, B, H), the
    cell's cache), the inputs (T·B, H) of the layers above the first after dropout and their dropout
    masks (None for the first layer, a gather), and the final state. lengths: (B,) characters each
    stream reads, longest first (see `packing`), or None: all T; a stream's final state is then the
    state after its own last character."""
    spec = packed.spec
    cell = CELLS[spec.cell]
    T, B = x.shape
    N, H, G = T * B, spec.hidden, cell.GATES * spec.hidden
    dtype = packed.table.dtype
    gates = work.get("gates0", (T, B, G), dtype)
    np.take(packed.table, x, axis=0, out=gates, mode="clip")
    active = None if lengths is None else np.count_nonzero(lengths[None, :] > np.arange(T)[:, None], axis=1)
    layer_caches, final, inputs, masks = [], [], [None], [None]
    for k in range(spec.layers):
        if k > 0:
            below, m = _dropout(hs[1:].reshape(N, H), drop.layers if drop else 0.0, rng)  # (T·B, H)
            inputs.append(below)
            masks.append(m)
            # the whole window's input projection in one GEMM: (T·B, H) @ (H, G)
            gates = work.get(f"gates{k}", (T, B, G), dtype)
            np.matmul(below, packed.layers[k]["w_ihT"], out=gates.reshape(N, G))
            gates += packed.layers[k]["bias"]
        layer_state = tuple(s[k] for s in state)
        hs, last, cache = cell.forward(gates, layer_state, packed.layers[k], work, k, active)
        if lengths is not None:
            last = tuple(history[lengths, np.arange(B)] for history in cell.history(hs, cache))
        layer_caches.append((hs, cache))
        final.append(last)
    new_state = tuple(np.stack([f[j] for f in final]) for j in range(len(cell.STATE)))
    return layer_caches, inputs, masks, new_state


def backward(params, cache, work=None):
    """Gradients of the loss with respect to every parameter, as a dict with the keys of params.

    Weight gradients are one GEMM per layer and window over all T·B positions, not one per step.
    """
    work = Workspace() if work is None else work
    spec = cache.spec
    cell = CELLS[spec.cell]
    x, y, probs = cache.x, cache.y, cache.probs
    T, B = x.shape
    H, V, G, N = spec.hidden, spec.vocab, cell.GATES * spec.hidden, x.size
    dtype = probs.dtype
    grads = {}

    dlogits = probs  # (T·B, V): softmax - onehot(y), times each position's weight
    dlogits[np.arange(N), y.reshape(-1)] -= 1
    dlogits *= cache.weight
    if cache.pointed is not None:
        pointer_grads, dtop, decoder_share = pointer.backward(params, cache.pointed, cache.weight)
        grads.update(pointer_grads)
        dlogits *= decoder_share
    grads["decoder.weight"] = dlogits.T @ cache.top
    grads["decoder.bias"] = dlogits.sum(axis=0)
    dhs = work.get("dhs", (T, B, H), dtype)
    np.matmul(dlogits, params["decoder.weight"], out=dhs.reshape(N, H))
    if cache.pointed is not None:
        dhs += dtop.reshape(T, B, H)
    if cache.top_mask is not None:
        dhs *= cache.top_mask.reshape(T, B, H)

    for k in reversed(range(spec.layers)):
        name = f"{spec.cell}.{{}}_l{k}"
        hs, layer_cache = cache.layers[k]
        dx, drec = cell.backward(layer_cache, dhs, params[name.format("weight_hh")], work, k)
        dx, drec = dx.reshape(N, G), drec.reshape(N, G)
        grads[name.format("weight_hh")] = drec.T @ hs[:-1].reshape(N, H)
        grads[name.format("bias_hh")] = drec.sum(axis=0)
        grads[name.format("bias_ih")] = dx.sum(axis=0) if dx is not drec else grads[name.format("bias_hh")].copy()
        if k > 0:
            grads[name.format("weight_ih")] = dx.T @ cache.inputs[k]
            np.matmul(dx, params[name.format("weight_ih")], out=dhs.reshape(N, H))
            if cache.masks[k] is not None:
                dhs *= cache.masks[k].reshape(T, B, H)
        else:
            grads[name.format("weight_ih")] = _onehot_weight_grad(dx, x.reshape(-1), V).T
    return grads


def _onehot_weight_grad(dx, x, V):
    """Row v of the result, (V, G), sums the rows of dx (N, G) at the positions where x = v: the gradient
    of the one-hot input's weights: one gather and sum per character present, far faster than np.add.at
    (docs/performance.md) and summing in the same order."""
    out = np.zeros((V, dx.shape[1]), dx.dtype)
    order = np.argsort(x, kind="stable")
    bounds = np.searchsorted(x[order], np.arange(V + 1))
    for v in range(V):
        if bounds[v + 1] > bounds[v]:
            dx[order[bounds[v] : bounds[v + 1]]].sum(axis=0, out=out[v])
    return out

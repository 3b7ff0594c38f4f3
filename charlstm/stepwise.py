"""The model a character at a time, for sampling and inspection: read prompts side by side, then step.

The state for stepping is a tuple: the cell's (L, B, H) arrays, as model.zero_state makes them, and,
for a model with a pointer, a pointer.Memory of the positions read so far. What comes out of `read` and
`Stepper.step` is the next character's logits (B, V); with a pointer, its log-probabilities under the
mixture (pointer.py), which sampling treats the same way.
"""

import numpy as np

from . import model, pointer
from .cells import CELLS
from .workspace import Workspace


def start(spec, batch, dtype=np.float32):
    """The state before the first character: zeros, and an empty pointer memory if the model has one."""
    state = model.zero_state(spec, batch, dtype)
    if spec.pointer:
        state += (pointer.Memory(batch, spec.pointer, spec.pointer_window, dtype),)
    return state


def restart(state, rows, fresh):
    """Give the streams `rows` of a stepping state (as `start` makes it) stream 0 of another, in place (a
    Stepper holds views of the arrays): a line's start, for models trained on lines."""
    for ours, theirs in zip(state, fresh):
        if isinstance(ours, np.ndarray):  # (L, B, H)
            ours[:, rows] = theirs[:, :1]
        else:  # the pointer's memory
            ours.restart(rows, theirs)


def _cells(state, spec):
    """The cell's part of a stepping state."""
    return state[: len(CELLS[spec.cell].STATE)]


def read(packed, prompts, work=None, chunk=128):
    """Read B prompts (id arrays, each at least one character) side by side from the zero state. Returns
    the state after each prompt's last character (as `start` makes it) and the logits (B, V) that follow
    it. The prompts run as training runs a window, `chunk` characters at a time (one gather or GEMM per
    layer for the input projection, no decoder until the end), and each row's state is taken at its own
    end: far fewer NumPy calls than a `step` per character."""
    work = Workspace() if work is None else work
    spec = packed.spec
    cell = CELLS[spec.cell]
    lengths = np.array([len(p) for p in prompts])  # (B,)
    B, T = len(prompts), int(lengths.max())
    x = np.zeros((T, B), np.intp)  # left-aligned; a row that has ended reads padding, never used
    for b, p in enumerate(prompts):
        x[: len(p), b] = p
    dtype = packed.table.dtype
    state = model.zero_state(spec, B, dtype)
    ended = start(spec, B, dtype)  # each row's state at its own end
    memory = ended[-1] if spec.pointer else None
    top = np.zeros((B, spec.hidden), dtype)  # the last layer's output there
    for first in range(0, T, chunk):
        layer_caches, _, _, state = model.run_layers(packed, x[first : first + chunk], state, work)
        W = min(chunk, T - first)
        rows = np.flatnonzero((lengths > first) & (lengths <= first + W))
        at = lengths[rows] - first  # (n,) index into this chunk's histories (0 is its initial state)
        for k, (hs, cache) in enumerate(layer_caches):
            for j, history in enumerate(cell.history(hs, cache)):
                ended[j][k, rows] = history[at, rows]
        top[rows] = layer_caches[-1][0][at, rows]
        if memory is not None:  # every position's key, and the character that followed it
            keys = pointer.keys(packed.pointer, layer_caches[-1][0][1 : W + 1])  # (W, B, d)
            for i in range(W):
                reading = lengths > first + i
                memory.commit(x[first + i], reading)
                memory.hold(keys[i], reading)
    logits = top @ packed.decoder_wT + packed.decoder_b
    if memory is not None:
        logits = memory.mix(packed.pointer, top, logits)
    return ended, logits


class Stepper:
    """Advances B streams by one character at a time from a stepping state (`start`, or `read`'s), which
    it updates in place, with the same packed weights as the training forward pass and each cell's
    `stepper` (the forward pass's step; an LSTM layer above the first makes its two products one). The
    views, buffers and scratch every step needs are made once, here, not looked up per character: at
    batch 1 that took a step of S from about 68 to 48 µs (docs/performance.md, 2026-12-06)."""

    def __init__(self, packed, state):
        spec = packed.spec
        cell = CELLS[spec.cell]
        cells = _cells(state, spec)
        B, dtype = cells[0].shape[1], packed.table.dtype
        self.table, self.decoder_wT, self.decoder_b = packed.table, packed.decoder_wT, packed.decoder_b
        # per layer: its gates buffer (B, G), and one timestep of its cell on its own part of the state,
        # reading the output of the layer under it (which its stepper holds: h, updated in place)
        self.layers, below = [], None
        for k, layer in enumerate(packed.layers):
            own = tuple(s[k] for s in cells)
            self.layers.append((np.zeros((B, packed.table.shape[1]), dtype), cell.stepper(layer, own, below)))
            below = own[0]
        self.logits = np.zeros((B, spec.vocab), dtype)
        self.pointer, self.memory = (packed.pointer, state[-1]) if spec.pointer else (None, None)

    def step(self, x, on_layer=None):
        """Advance every stream by its character x (B,) integers. Returns the logits (B, V), a buffer
        that the next call overwrites (with a pointer, a new array of log-probabilities).
        on_layer(k, activations, h), if given, sees each layer's gate activations (B, G) and output (B, H).
        """
        self.table.take(x, axis=0, out=self.layers[0][0], mode="clip")  # the method: no Python wrapper
        with np.errstate(over="ignore"):  # a saturated gate's exp overflows, rightly (cells/lstm.py)
            for k, (gates, advance) in enumerate(self.layers):
                h = advance(gates)
                if on_layer is not None:
                    on_layer(k, gates, h)
        logits = self.logits
        np.matmul(h, self.decoder_wT, out=logits)
        np.add(logits, self.decoder_b, out=logits)
        if self.memory is not None:
            self.memory.commit(x)
            logits = self.memory.mix(self.pointer, h, logits)
        return logits

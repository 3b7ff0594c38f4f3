"""A pointer over the text's own past (model.pointer): the LSTM chooses where to look, the pointer copies.

A character model that must repeat a name it read once has to spell it from its memory, letter by
letter; an LSTM learns which name to repeat long before it learns to spell names it never saw
(docs/memory.md). The pointer sentinel of Merity et al. (2016, "Pointer Sentinel Mixture Models")
lets the model copy instead: at every position it may point at an earlier position and predict the
character that followed it there. With h_t the last layer's output (what the decoder reads), d the
pointer's width, and positions j < t of the same window (in lines mode: of the same line):

    q_t = W_q h_t + b_q     k_j = W_k h_j + b_k          (d,)
    z_tj = q_t · k_j / √d   (j < t)                     z_t* = w_g · h_t + b_g      the sentinel
    a_t = softmax([z_t0, ..., z_t,t-1, z_t*])
    p(x_{t+1} = c) = a_t* softmax(decoder(h_t))_c + Σ_{j < t, x_{j+1} = c} a_tj

so the sentinel's share a_t* is what the decoder's prediction keeps. Parameters, as three nn.Linear
modules of PyTorch: pointer.query (d, H), pointer.key (d, H), pointer.gate (1, H), each .weight and .bias.
Training and scoring see the positions of the current window only; sampling (Memory) the last `size`.
Shapes below: B streams, T positions, H hidden, d the pointer's width, N = T·B.
"""

from dataclasses import dataclass

import numpy as np

NAMES = ("query", "key", "gate")
TINY = 1e-30  # a floor under the mixed probability, so that -log stays finite


def param_shapes(width, hidden):
    """The pointer's parameters, named as the state_dict of three nn.Linear(H, ·) modules."""
    shapes = {}
    for name, out in (("query", width), ("key", width), ("gate", 1)):
        shapes[f"pointer.{name}.weight"] = (out, hidden)
        shapes[f"pointer.{name}.bias"] = (out,)
    return shapes


def _linear(params, name, h):
    return h @ params[f"pointer.{name}.weight"].T + params[f"pointer.{name}.bias"]


@dataclass(eq=False)
class Cache:
    """What `forward` leaves for `backward`, in (B, T, ·) layout."""

    top: np.ndarray  # (N, H) the pointer's input
    q: np.ndarray  # (B, T, d) the queries divided by √d
    k: np.ndarray  # (B, T, d)
    a: np.ndarray  # (B, T, T) attention on earlier positions (0 on the others)
    g: np.ndarray  # (B, T) the sentinel's share
    a_same: np.ndarray  # (B, T, T) a where position j < t was followed by the target of t, else 0
    pv: np.ndarray  # (B, T) the decoder's probability of the target
    p: np.ndarray  # (B, T) the mixed probability of the target


def forward(params, top, y, probs):
    """The negative log-likelihood (N,) of the targets y (T, B) under the mixture, in y's (T·B) order.
    top (N, H): the last layer's output; probs (N, V): the decoder's softmax.

    The (B, T, T) arrays are the cost here: they stay in top's dtype and are made in place, a few passes
    each (1/√d is folded into the queries, the mask is added, not selected)."""
    T, B = y.shape
    d = params["pointer.query.weight"].shape[0]
    q = _linear(params, "query", top)
    dtype = q.dtype  # top's, or wider if the parameters are
    q *= dtype.type(1 / np.sqrt(d))
    q = q.reshape(T, B, d).transpose(1, 0, 2).copy()  # (B, T, d), divided by √d
    k = _linear(params, "key", top).reshape(T, B, d).transpose(1, 0, 2).copy()  # (B, T, d)
    z_gate = _linear(params, "gate", top).reshape(T, B).T  # (B, T)
    before = np.tri(T, T, -1, dtype=bool)  # (T, T): j < t
    a = np.matmul(q, k.transpose(0, 2, 1))  # (B, T, T) the scores, then their softmax
    a += np.where(before, dtype.type(0), dtype.type(-np.inf))  # only earlier positions
    top_score = np.maximum(a.max(axis=2), z_gate)  # (B, T)
    a -= top_score[:, :, None]
    np.exp(a, out=a)
    g = np.exp(z_gate - top_score)
    total = a.sum(axis=2) + g
    a /= total[:, :, None]
    g /= total
    yb = y.T  # (B, T)
    a_same = a * ((yb[:, None, :] == yb[:, :, None]) & before)  # [b, t, j]: y_j == y_t, j < t
    pv = probs[np.arange(T * B), y.reshape(-1)].reshape(T, B).T  # (B, T)
    p = np.maximum(g * pv + a_same.sum(axis=2), TINY)
    nll = -np.log(p).T.reshape(-1)  # (N,) in y's order
    return nll, Cache(top, q, k, a, g, a_same, pv, p)


def backward(params, cache, weight):
    """Gradients of Σ weight · nll: (grads of the pointer's parameters, d/d top (N, H), and r (N, 1), the
    factor that turns the decoder's usual gradient (softmax - onehot) · weight into this loss's).
    weight: a number or (N, 1), each position's share of the loss (model.Cache.weight)."""
    B, T, d = cache.q.shape
    w = np.broadcast_to(np.asarray(weight, cache.p.dtype).reshape(-1), (T * B,)).reshape(T, B).T  # (B, T)
    r = cache.g * cache.pv / cache.p  # (B, T): the decoder's share of the probability
    # d(-log p)/dz for each score of the softmax: a (1 - e / p) w, e the probability that option names
    dz = cache.a * w[:, :, None]  # (B, T, T)
    dz -= cache.a_same * (w / cache.p)[:, :, None]
    dz_gate = cache.g * (1.0 - cache.pv / cache.p) * w  # (B, T)
    dq = np.matmul(dz, cache.k).transpose(1, 0, 2).reshape(T * B, d)  # (N, d)
    dq *= cache.q.dtype.type(1 / np.sqrt(d))  # the scores are q·k / √d
    dk = np.matmul(dz.transpose(0, 2, 1), cache.q).transpose(1, 0, 2).reshape(T * B, d)  # q holds the 1/√d
    dg = dz_gate.T.reshape(T * B, 1)  # (N, 1)
    grads = {}
    dtop = np.zeros_like(cache.top)
    for name, dout in (("query", dq), ("key", dk), ("gate", dg)):
        grads[f"pointer.{name}.weight"] = dout.T @ cache.top
        grads[f"pointer.{name}.bias"] = dout.sum(axis=0)
        dtop += dout @ params[f"pointer.{name}.weight"]
    return grads, dtop, r.T.reshape(-1, 1)


def keys(params, hs):
    """The keys (..., d) of the last layer's outputs hs (..., H)."""
    return _linear(params, "key", hs)


class Memory:
    """The pointer's past while sampling: per stream the keys of its last `size` positions whose next
    character is known, those characters, and the key of the newest position, waiting for its character.

    A sampled character costs one `mix`, one `commit`: a few dozen small NumPy calls, so they are kept
    few (the query, key and gate as one product; the mixture's sum by np.bincount)."""

    def __init__(self, batch, width, size, dtype=np.float32):
        self.keys = np.zeros((batch, size, width), dtype)  # (B, size, d), a ring per stream
        self.values = np.zeros((batch, size), np.intp)  # (B, size)
        self.count = np.zeros(batch, np.int64)  # (B,) positions stored so far (all of them, not only the kept)
        self.pending = np.zeros((batch, width), dtype)  # (B, d): the newest position's key
        self.waiting = np.zeros(batch, bool)  # (B,): whether it waits for its character
        self.size = size
        self.share = np.zeros(batch)  # (B,) the pointer's part of the last prediction (1 - the sentinel's)
        self._rows = np.arange(batch)
        self._projection = None  # (params, weight (H, 2d+1), bias (2d+1,)): query / √d, key and gate at once

    def commit(self, x, rows=None):
        """x (B,): the characters that followed the newest positions; rows: (B,) bool, the streams that
        read them (all by default)."""
        take = self.waiting if rows is None else self.waiting & rows
        where = self._rows if take.all() else np.flatnonzero(take)
        slot = self.count[where] % self.size
        self.keys[where, slot] = self.pending[where]
        self.values[where, slot] = x[where]
        self.count[where] += 1
        self.waiting[where] = False

    def restart(self, rows, fresh):
        """Give the streams `rows` the past of stream 0 of another Memory `fresh` (a line's start)."""
        for name in ("keys", "values", "count", "pending", "waiting"):
            getattr(self, name)[rows] = getattr(fresh, name)[0]

    def hold(self, key, rows=None):
        """key (B, d): the newest position's, waiting for its character; rows: (B,) bool (default all)."""
        take = slice(None) if rows is None else rows
        self.pending[take] = key[take]
        self.waiting[take] = True

    def _project(self, params, h):
        """(B, 2d+1): h's query divided by √d, its key and its gate score, in one product."""
        if self._projection is None or self._projection[0] is not params:
            d = self.keys.shape[2]
            parts = [(params[f"pointer.{name}.weight"], params[f"pointer.{name}.bias"]) for name in NAMES]
            scale = np.ones(2 * d + 1, parts[0][0].dtype)
            scale[:d] = 1 / np.sqrt(d)
            weight = np.ascontiguousarray(np.concatenate([w for w, _ in parts]).T * scale)
            self._projection = params, weight, np.concatenate([b for _, b in parts]) * scale
        _, weight, bias = self._projection
        out = h @ weight
        out += bias
        return out

    def mix(self, params, h, logits):
        """The log-probabilities (B, V) of the next character: the decoder's logits (B, V) mixed with the
        pointer's distribution over what followed the stored positions. h (B, H): the last layer's output,
        whose key then waits for its character (commit)."""
        B, V = logits.shape
        d = self.keys.shape[2]
        projected = self._project(params, h)
        q, z_gate = projected[:, :d], projected[:, 2 * d].astype(np.float64)  # (B, d), (B,)
        a = np.matmul(self.keys, q[:, :, None])[:, :, 0].astype(np.float64)  # (B, size): the scores
        if self.count.min() < self.size:  # slots not filled yet
            a[np.arange(self.size)[None, :] >= self.count[:, None]] = -np.inf
        top = np.maximum(a.max(axis=1), z_gate)
        a -= top[:, None]
        np.exp(a, out=a)
        g = np.exp(z_gate - top)
        total = a.sum(axis=1) + g
        self.share = 1.0 - g / total  # (B,) the pointer's part of this prediction (inspection shows it)
        p = logits.astype(np.float64)
        p -= p.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p *= (g / total / p.sum(axis=1))[:, None]
        a /= total[:, None]
        p += np.bincount((self.values + (self._rows * V)[:, None]).ravel(), a.ravel(), B * V).reshape(B, V)
        self.hold(projected[:, d : 2 * d])
        with np.errstate(divide="ignore"):
            return np.log(p, out=p)

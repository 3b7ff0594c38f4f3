"""Preallocated arrays, reused from window to window so the hot loops allocate nothing after the first call."""

import numpy as np


class Workspace:
    """Named scratch arrays. `get` returns the array stored under a name, allocating it again only when the
    shape or dtype changes. Anything a function returns that lives here (a cache, gradients, logits) stays
    valid until the next call that uses the same workspace."""

    def __init__(self):
        self._arrays = {}

    def get(self, name, shape, dtype):
        """An array of that shape and dtype with undefined contents. When only the first dimension
        shrinks (a shorter window), it is the leading part of the array already there."""
        shape = tuple(shape)
        a = self._arrays.get(name)
        if a is not None and a.shape == shape and a.dtype == dtype:
            return a
        if a is not None and a.dtype == dtype and a.shape[1:] == shape[1:] and 0 < shape[0] <= a.shape[0]:
            return a[: shape[0]]
        # zeros, not np.empty: the cells skip the padding of ended streams (model.packing) and leave what
        # is there, which must be finite, however the array was first filled
        a = self._arrays[name] = np.zeros(shape, dtype)
        return a

    def zeros(self, name, shape, dtype):
        """Like `get`, filled with zeros."""
        a = self.get(name, shape, dtype)
        a.fill(0)
        return a

    def nbytes(self):
        return sum(a.nbytes for a in self._arrays.values())

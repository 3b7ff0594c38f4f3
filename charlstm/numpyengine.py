"""The NumPy engines' shared half, and the engine of one process: the interface of engine.py computed in
NumPy on the arrays of the TrainState itself.

NumpyEngine does the clipping and the update; a subclass computes the loss and gradients of a window:
LocalEngine here, in this process, with model.forward and model.backward; parallel.ParallelEngine in
worker processes, each a share of the batch.
"""

import math

import numpy as np

from . import blaswarmup, evaluate, model
from .optim import clip_by_global_norm
from .workspace import Workspace


class NumpyEngine:
    """What the NumPy engines share: clipping and the update in NumPy, on the arrays of the TrainState
    itself. A subclass computes the loss and gradients, `forward_backward(params, window, state, dropout)
    -> (loss, state to carry, grads)`, on the arrays `share(params)` gave it to train."""

    workers = 1
    main = True
    described = None  # how the trainer's first line names the engine: nothing, for NumPy

    def __init__(self):
        self.val_work = Workspace()  # validation's buffers, reused from one validation to the next

    def adopt(self, ts):
        ts.params = self.share(ts.params)

    def share(self, params):
        return params

    def step(self, ts, window, lr, clip, dropout=None):
        # NumPy warns about overflows on the way to a non-finite loss, which the trainer reports itself
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            loss, next_state, grads = self.forward_backward(ts.params, window, ts.state, dropout)
            if not math.isfinite(loss):
                return loss, math.nan
            norm = clip_by_global_norm(grads, clip)
            if not math.isfinite(norm):
                return loss, norm
            ts.optimizer.update(ts.params, grads, lr)
        ts.state = next_state
        return loss, norm

    def agree(self, stop):
        return stop

    def score(self, ts, streams, window):
        return evaluate.score(ts.model_params(), streams, window, self.val_work, spec=self.spec)

    def pull(self, ts):
        pass

    def close(self):
        pass


class LocalEngine(NumpyEngine):
    """model.forward and model.backward over the whole window, in this process."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        self.work = Workspace()  # reused from window to window
        blaswarmup.warm_up()

    def forward_backward(self, params, window, state, dropout=None):
        """(loss, state to carry, grads); grads is None when the loss is not finite: nothing to step on."""
        packed = model.pack(params, self.spec)
        loss, new_state, cache = model.forward(params, window, state, self.work, dropout, packed)
        if not math.isfinite(loss):
            return loss, new_state, None
        return loss, new_state, model.backward(params, cache, self.work)

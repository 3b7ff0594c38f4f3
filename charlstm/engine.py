"""Engines: what computes a training step's loss and gradients, in this process or in worker processes.

The training loop talks to either through one interface and never asks which it has:

    workers                             processes that compute a step (1: this one)
    adopt(params) -> params             the arrays to train in place from now on: params themselves, or
                                        copies in memory shared with the workers; the optimizer updates
                                        them and the engine reads them at the next step
    forward_backward(params, window, state, dropout) -> (loss, state to carry, grads)
    close()                             ends the workers, if any

An engine built on another library (PyTorch, issue 22) plugs in the same way: it adopts NumPy arrays it
can read without copying and returns NumPy gradients, so that the optimizer, the checkpoints and the
loop stay as they are; `start`, which picks a run's engine, is where a setting choosing it would be read.
"""

import math

from . import model
from .errors import ConfigError
from .workspace import Workspace


class LocalEngine:
    """model.forward and model.backward over the whole window, in this process."""

    workers = 1

    def __init__(self, spec):
        self.spec = spec
        self.work = Workspace()  # reused from window to window

    def adopt(self, params):
        return params

    def forward_backward(self, params, window, state, dropout=None):
        """(loss, state to carry, grads); grads is None when the loss is not finite: nothing to step on."""
        packed = model.pack(params, self.spec)
        loss, new_state, cache = model.forward(params, window, state, self.work, dropout, packed)
        if not math.isfinite(loss):
            return loss, new_state, None
        return loss, new_state, model.backward(params, cache, self.work)

    def close(self):
        pass


def start(spec, batch, window, workers):
    """The engine for `workers` processes sharing each batch of `batch` streams of `window` characters;
    0 lets parallel.auto_workers choose."""
    from .parallel import ParallelEngine, auto_workers

    workers = workers or auto_workers(spec, batch)
    if workers <= 1:
        return LocalEngine(spec)
    if workers > batch:
        raise ConfigError(f"train.workers {workers} is more than data.batch {batch}")
    return ParallelEngine(spec, batch, window, workers)

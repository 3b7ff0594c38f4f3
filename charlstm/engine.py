"""Engines: what trains a run's state, step by step: NumPy in this process (LocalEngine), NumPy in worker
processes (parallel.ParallelEngine), or PyTorch on a CPU or GPU, in one process or many (torchengine.py).

The trainer holds a trainstate.TrainState (NumPy arrays, what checkpoints hold) and talks to every engine
through one interface, without asking which it has:

    workers                     processes that compute a step (1: this one)
    main                        whether this process writes the run directory and reports (under
                                torchrun, rank 0 only)
    described                   a few words for the trainer's first line, or None
    adopt(ts)                   take over the state to train from now on
    step(ts, window, lr, clip, dropout) -> (loss, gradient norm before clipping)
                                one optimizer step: forward, backward, clipping, update; ts.state becomes
                                the recurrent state to carry into the next window (in the engine's own
                                form: numpy arrays, or tensors on the device). When the loss or the norm is
                                not finite nothing is updated, for the trainer to stop with one line.
    agree(stop) -> bool         whether any process asks to stop, so that all stop at the same step
    score(ts, streams, window) -> (total nats, characters): evaluate.score of the model
    pull(ts)                    make ts's NumPy arrays current (weights, optimizer state, moving average,
                                carried state) before they are read: cloze scoring, checkpoints. Every
                                process of a run calls it at the same points (it may be collective).
    close()                     ends worker processes or the process group, if any

The NumPy engines train ts's own arrays, so pull has nothing to do; the torch engine keeps weights,
optimizer state and moving average on its device, where the update happens, and copies them back on pull.
"""

import math
import os

import numpy as np

from . import evaluate, model
from .errors import ConfigError
from .optim import clip_by_global_norm
from .workspace import Workspace


def distributed():
    """Whether this process is one of several that torchrun started for one run."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def is_main_process():
    """False in the processes torchrun starts besides rank 0: they train, but write and print nothing."""
    return not distributed() or int(os.environ.get("RANK", "0")) == 0


def check(train_config):
    """Before any corpus is read: that the engine and device a run asks for can be had here."""
    if train_config.engine == "torch":
        try:
            import torch  # noqa: F401  (an optional extra)
        except ImportError:
            raise ConfigError("the torch engine needs PyTorch: pip install 'charlstm[torch]'") from None
        from . import torchengine

        torchengine.check_device(train_config.device)
    elif distributed():
        raise ConfigError(f"torchrun started {os.environ['WORLD_SIZE']} processes, but only the torch engine trains "
                          f"across processes: add --engine torch")


def start(spec, cfg):
    """The engine cfg.train names, for a batch of cfg.data.batch streams of cfg.data.window characters."""
    if cfg.train.engine == "torch":
        from .torchengine import TorchEngine

        return TorchEngine(spec, cfg)
    from .parallel import ParallelEngine, auto_workers

    batch, workers = cfg.data.batch, cfg.train.workers or auto_workers(spec, cfg.data.batch)
    if workers <= 1:
        return LocalEngine(spec)
    if workers > batch:
        raise ConfigError(f"train.workers {workers} is more than data.batch {batch}")
    return ParallelEngine(spec, batch, cfg.data.window, workers)


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

    def forward_backward(self, params, window, state, dropout=None):
        """(loss, state to carry, grads); grads is None when the loss is not finite: nothing to step on."""
        packed = model.pack(params, self.spec)
        loss, new_state, cache = model.forward(params, window, state, self.work, dropout, packed)
        if not math.isfinite(loss):
            return loss, new_state, None
        return loss, new_state, model.backward(params, cache, self.work)

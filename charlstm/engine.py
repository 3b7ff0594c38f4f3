"""Engines: what trains a run's state, step by step: NumPy in this process (numpyengine.LocalEngine), NumPy
in worker processes (parallel.ParallelEngine), or PyTorch on a CPU or GPU, in one process or many
(torchengine.py). This module is the registry above them: which one a run gets (start), and whether it
can be had here (check); the engines themselves import nothing of it.

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

import os

from .errors import ConfigError
from .numpyengine import LocalEngine


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
            raise ConfigError("the torch engine needs PyTorch: pip install torch (or, in charlstm's checkout, "
                              "pip install '.[torch]')") from None
        from . import torchengine

        torchengine.check_device(train_config.device)
    elif distributed():
        raise ConfigError(f"torchrun started {os.environ['WORLD_SIZE']} processes, but only the torch engine trains "
                          f"across processes: add --engine torch")


def start(spec, cfg, say=None):
    """The engine cfg.train names, for a batch of cfg.data.batch streams of cfg.data.window characters.
    Worker processes need shared memory; where /dev/shm is too small for it (a container's 64 MB), one
    process trains instead, and say (if given) is told why."""
    if cfg.train.engine == "torch":
        from .torchengine import TorchEngine

        return TorchEngine(spec, cfg)
    from .parallel import ParallelEngine, auto_workers, shm_shortfall

    batch, workers = cfg.data.batch, cfg.train.workers or auto_workers(spec, cfg.data.batch)
    if workers <= 1:
        return LocalEngine(spec)
    if workers > batch:
        raise ConfigError(f"train.workers {workers} is more than data.batch {batch}")
    short = shm_shortfall(spec, batch, cfg.data.window, workers)
    if short is not None:
        if say is not None:
            say(f"note: {short}")
        return LocalEngine(spec)
    return ParallelEngine(spec, batch, cfg.data.window, workers)

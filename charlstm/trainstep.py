"""One optimizer step of a run: the training loop's call (train_step), and timing a few real steps, which
is what --dry-run reports and what model.size auto sizes the run by (time_steps).

Below both the loop (train.py) and the sizing (autosize.py, dryrun.py), so that each can take a step
without importing the other. When timing, the steps train the arrays they are given on the run's own
next windows; the caller throws them away. The first step is not timed: it allocates the engine's
buffers (and, with workers, warms them up).
"""

import time

from . import model
from .dropout import dropout_at
from .optim import learning_rate


def train_step(engine, ts, window, lr, clip, dropout=None):
    """One optimizer step of the TrainState ts on one data.Window by the engine (engine.py: forward,
    backward, global-norm clipping, update); dropout is a dropout.Dropout or None. Returns (loss, gradient
    norm before clipping); ts.state becomes the state to carry into the next window. When the loss or the
    norm is not finite, nothing is updated, for the caller to stop with one line. The loop's one call per
    step, which bench/speed_train.py times (as train.train_step, the name the loop looks up)."""
    return engine.step(ts, window, lr, clip, dropout)


def time_steps(engine, ts, cfg, spec, batches, seconds=1.0, steps=(2, 50), spread=False):
    """(seconds per step, characters per step, steps timed) of engine training ts, for at least
    `seconds` and steps[0] steps, at most steps[1], after one untimed step: on the windows of the steps
    that follow, or with spread=True on windows drawn from steps spread over the whole run (a
    curriculum's first windows hold its shortest lines: the default run's took half the time of its
    average step)."""
    spent, chars, timed, first = 0.0, 0, 0, ts.progress.step
    left = max(cfg.train.steps - first, 1)
    step, untimed = first, True
    while timed < steps[1] and (timed < steps[0] or spent < seconds):
        if spread and not untimed:  # the golden ratio's multiples modulo 1 spread evenly however many are taken
            step = first + int(left * (((timed + 1) * 0.6180339887) % 1.0))
        epoch, n = divmod(step, batches.windows_per_epoch)
        if batches.starts_sequence(n):
            ts.state = model.zero_state(spec, cfg.data.batch)
        window = batches.window(epoch, n, step)
        lr = learning_rate(cfg.optim, step, epoch, cfg.train.steps)
        start = time.perf_counter()
        train_step(engine, ts, window, lr, cfg.optim.clip, dropout_at(cfg, step))
        if not untimed:
            spent += time.perf_counter() - start
            chars += window.targets()
            timed += 1
        untimed = False
        step += 1
    return spent / timed, chars / timed, timed

"""Timing a few real training steps: what --dry-run reports and what model.size auto sizes the run by.

The steps train the arrays they are given on the run's own next windows; the caller throws them away.
The first step is not timed: it allocates the engine's buffers (and, with workers, warms them up).
"""

import time

from . import model
from .optim import learning_rate


def time_steps(engine, ts, cfg, spec, batches, seconds=1.0, steps=(2, 50)):
    """(seconds per step, characters per step, steps timed) of engine training ts, for at least
    `seconds` and steps[0] steps, at most steps[1], after one untimed step."""
    from .train import dropout_at, train_step

    spent, chars, timed, step = 0.0, 0, 0, ts.progress.step
    while timed < steps[1] and (timed < steps[0] or spent < seconds):
        epoch, n = divmod(step, batches.windows_per_epoch)
        if batches.starts_sequence(n):
            ts.state = model.zero_state(spec, cfg.data.batch)
        window = batches.window(epoch, n, step)
        lr = learning_rate(cfg.optim, step, epoch, cfg.train.steps)
        start = time.perf_counter()
        train_step(engine, ts, window, lr, cfg.optim.clip, dropout_at(cfg, step))
        if step > ts.progress.step:
            spent += time.perf_counter() - start
            chars += window.targets()
            timed += 1
        step += 1
    return spent / timed, chars / timed, timed

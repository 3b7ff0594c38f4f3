"""`charlstm train --dry-run`: what a run would do, without doing it.

The resolved configuration with the origin of every value (default, preset or file, flag, --set), the
corpus and vocabulary sizes, the parameter count, and the time per 1,000 steps measured on a few real
steps of the real model, workers included; the whole run's time adds the validations and cloze scorings
it will make, each timed once. Nothing is written: the steps train a copy that is thrown away.
"""

import math
import time

from . import config as config_mod
from . import evaluate, heldout
from . import trainstep

TIME_FOR = 1.0  # seconds of steps to time, after one untimed step (which allocates the buffers)
STEPS = (2, 50)  # at least, at most


def report(trainer):
    """The lines of the report for a Trainer whose _setup has run."""
    cfg, inputs, spec, p = trainer.cfg, trainer.inputs, trainer.spec, trainer.ts.progress
    corpus = inputs.corpus
    seconds, chars, timed = time_steps(trainer)
    left = max(cfg.train.steps - p.step, 0)
    val_line, val_s = validation(trainer)
    cloze_line, cloze_s = cloze(trainer)
    every = {"validation": cfg.train.eval_every, "cloze": cfg.train.cloze_every or cfg.train.eval_every}
    count = {k: scheduled(cfg.train.steps, p.step, e) for k, e in every.items()}
    whole = left * seconds + count["validation"] * val_s + count["cloze"] * cloze_s
    params = sum(int(a.size) for a in trainer.ts.params.values())
    workers = trainer.engine.workers
    files = len(corpus.files)
    held_out = (f"in {inputs.val_source}" if inputs.val_source
                else f"held out (the last {cfg.data.val_fraction:.0%})")
    layers = f"{spec.layers} layer{'s' * (spec.layers != 1)} of {spec.hidden} units"
    lines = ["# the configuration" + (", and where each value comes from" if trainer.origins else "")]
    lines += config_mod.dump(cfg, trainer.origins).splitlines()
    lines += [
        "",
        f"corpus      {files} file{'s' * (files != 1)}: {len(corpus.train):,} characters for training, "
        f"{len(corpus.val):,} for validation, {held_out}",
        val_line,
        *([cloze_line] if cloze_line else []),
        f"vocabulary  {len(corpus.vocab)} characters",
        f"model       {spec.cell.upper()}, {layers}: {params:,} parameters",
        f"steps       {cfg.train.steps:,}"
        + (f", {left:,} left from step {p.step:,}" if trainer.resume else "")
        + f"; an epoch is {inputs.batches.windows_per_epoch:,} steps",
        f"speed       {_duration(1000 * seconds)} per 1,000 steps ({seconds:.3f} s a step, {chars / seconds:,.0f} "
        f"chars/s; {timed} steps timed, {workers} process{'es' * (workers != 1)}); validation not counted",
        f"whole run   about {_duration(whole)}" + (" with the validations and cloze scorings" if cloze_s else
                                                   " with the validations" if val_s else "")
        + (f", stopped after {_duration(config_mod.parse_duration(cfg.train.time_budget))} (train.time_budget)"
           if cfg.train.time_budget else ""),
        f"run         {trainer.out} (nothing was created)",
    ]
    return lines


def scheduled(total, step, every):
    """How many times a run at `step` of `total` will still validate (or score its cloze) `every` steps:
    at each multiple of it after this step, and at the last step unless that is one."""
    if step >= total:
        return 0
    return total // every - step // every + (total % every != 0)


def validation(trainer):
    """The line that says how much of the held-out text each validation scores, and about how long it
    takes; and that time in seconds."""
    cfg, streams = trainer.cfg, trainer.inputs.val_streams
    held, scored = len(trainer.inputs.corpus.val), sum(max(len(s) - 1, 0) for s in streams)
    if not scored:
        return "validation  none (too little held-out text)", 0.0
    seconds = heldout.seconds_to_score(trainer.engine, trainer.ts, streams, cfg.data.window)
    what = ("all of it" if heldout.budget(cfg, held) >= held else
            f"a fixed sample spread over the {held:,} held out (train.val_max_chars; 0 scores all)")
    return (f"validation  {scored:,} characters scored every {cfg.train.eval_every:,} steps, {what}: about "
            f"{_duration(seconds)} each"), seconds


def cloze(trainer, sample=256):
    """The line that says how many blanks each cloze scoring fills and about how long it takes (timed on
    up to `sample` of them, one batch of fill_blanks, and scaled), and that time; ("", 0) without one."""
    if not trainer.inputs.cloze:
        return "", 0.0
    cfg, (prompts, answers) = trainer.cfg, trainer.inputs.cloze
    n = min(len(prompts), sample)
    began = time.monotonic()
    evaluate.cloze(trainer.ts.model_params(), trainer.inputs.corpus.vocab, prompts[:n], answers[:n],
                   unknown="skip", spec=trainer.spec)
    seconds = (time.monotonic() - began) * math.ceil(len(prompts) / n)
    return (f"cloze       {len(prompts):,} blanks filled every {cfg.train.cloze_every or cfg.train.eval_every:,} "
            f"steps: about {_duration(seconds)} each"), seconds


def time_steps(trainer):
    """(seconds per step, characters per step, steps timed) of the trainer's engine on its next windows, or
    with a curriculum on windows spread over the run (its first hold only the shortest lines)."""
    return trainstep.time_steps(trainer.engine, trainer.ts, trainer.cfg, trainer.spec, trainer.inputs.batches,
                                TIME_FOR, STEPS, spread=trainer.cfg.data.curriculum_steps > 0)


def _duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds / 3600:.1f} hours"

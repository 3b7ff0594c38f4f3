"""`model.size: auto`: the model, its regularisation and its schedule for a time budget, this text and
this machine.

A run given a time budget and no model size trains the largest shape of LADDER that can still make
STEPS optimizer steps in the budget, at the speed this machine measures for it (a few real steps of each
shape tried, at the start; a bisection of the ladder, three or four shapes). The rule comes from runs at
2, 5 and 10 minutes on two corpora (docs/quality.md, "How auto sizes a run"): in each budget the best
shape was the largest that still made a few thousand steps; a bigger one learns more per step but
stops too early, a smaller one converges to a worse loss. Dropout rises with the overfitting pressure,
epochs times parameters per character of text (a big model that sees a small text many times overfits);
the learning rate follows a cosine over exactly the steps that fit, validations paid for from the budget.

What the user set (a preset, a file, a flag or --set) is kept: auto fills in only the keys left at
their defaults, and chooses among the shapes with the hidden size or layers given. The run's
config.yaml records the chosen values with model.size: fixed, so `--config RUN_DIR/config.yaml`
repeats the run.
"""

import copy
import dataclasses
import math
import signal
import threading
import time

import numpy as np

from . import config as config_mod
from . import engine as engine_mod
from . import model, trainstep
from .data import make_batches
from .heldout import validation_streams
from .errors import ConfigError, DataError
from .trainstate import TrainState


@dataclasses.dataclass(frozen=True)
class Shape:
    hidden: int
    layers: int
    batch: int

    def __str__(self):
        return f"{self.hidden}x{self.layers} (batch {self.batch})"


# Ordered by the cost of a step. 128x1 to 512x2 were measured (docs/quality.md); 768x2 and 1024x2 are for
# budgets longer than those measured (ten minutes), where the rule is extrapolated.
LADDER = (Shape(128, 1, 32), Shape(256, 1, 32), Shape(384, 1, 32), Shape(256, 2, 32), Shape(384, 2, 32),
          Shape(512, 2, 32), Shape(768, 2, 64), Shape(1024, 2, 64))

STEPS = 3000  # fitted (docs/quality.md): in each budget the best shape was the largest that made about this
#               many steps. Two minutes: 256x1 with 2,711 and 2,880 steps lost to 128x1, with 3,100 beat it;
#               ten: 384x2 with 3,274 beat 256x2 and 512x2. Timing varies by 5-15% between runs, so near
#               the line either neighbour may be taken; they measured within 0.003-0.015 nats there.
OWNED = ("model.hidden", "model.layers", "model.dropout", "model.decoder_dropout", "data.batch",
         "optim.lr", "optim.schedule", "optim.warmup", "optim.min_lr",
         "train.steps", "train.eval_every", "train.save_every", "data.val_streams")
VALIDATION_SHARE = 0.05  # of the budget spent validating, unless VALIDATIONS[0] of them cost more (a long
#                          held-out text: train.val_max_chars scores less of it)
VAL_STREAMS = 32  # a validation batch that keeps the products efficient (fewer for a short text: heldout.py)
DROPOUT_AT = (12.7, 0.25)  # (pressure, dropout): 384x2 on Tiny Shakespeare in ten minutes, where 0.25 beat
#                           no dropout by 0.006 (docs/quality.md); other rates and pressures not swept
VALIDATIONS = (4, 20)  # at least, at most, in a run
MARGIN = 0.95  # of the training time left, planned for: the rest absorbs a slower minute
TIMING = (0.4, 0.002, 1.5)  # seconds of steps per shape tried: at least, share of the budget, at most
MANY_EPOCHS = 50  # a plan that reads its text more often than this says so: no shape of the ladder is
#                   small enough for such a text (2,850 characters, 128x1, 3 minutes: the validation loss
#                   was lowest after 190 reads of 415, then rose; docs/reliability.md)


def wanted(cfg, origins):
    """Whether the run is sized automatically: model.size auto, or by-budget with a time budget and
    neither model.hidden nor model.layers set (auto keeps them when they are set: it then chooses among
    the shapes that have them; a warm start, model.init_from, is not sized: its checkpoint fixes the
    shape). origins: {"section.key": where its value came from}; None (a config built
    in code) counts every key as set. A ConfigError for auto under torchrun."""
    size, budget = cfg.model.size, cfg.train.time_budget
    given = [key for key in ("model.hidden", "model.layers")
             if origins is None or origins.get(key, "default") != "default"]
    if size == "auto":  # config.validate has made sure it has a budget
        if engine_mod.distributed():  # each process would time, and might choose, on its own
            raise ConfigError("model.size auto times one process: under torchrun give model.hidden and model.layers")
        return True
    return (size == "by-budget" and budget is not None and not given and not cfg.model.init_from
            and not engine_mod.distributed())


@dataclasses.dataclass
class Choice:
    """What auto chose, and the measurements it chose by."""

    shape: Shape
    step_seconds: float  # a training step of the chosen shape, measured
    val_seconds: float  # one validation, estimated from a timed part of it
    tried: list  # [(Shape, steps that fit in the budget)], the chosen one's with its dropout
    timing_seconds: float  # how long the sizing took
    keys: dict  # {"section.key": value} written into the config
    why: str  # why this shape: "given", "largest" (that reaches STEPS), "smallest" or "top" (of the ladder)
    epochs: float = 0.0  # how many times the planned steps read the training text
    text_chars: int = 0  # characters of the training text

    def lines(self):
        """What the run says at its start."""
        tried = ", ".join(f"{s.hidden}x{s.layers}: {steps:,}" for s, steps in self.tried)
        why = {"given": "the shape given",
               "largest": f"the largest shape that makes {STEPS:,} steps in this budget here",
               "smallest": f"the smallest shape: none makes {STEPS:,} steps in this budget here",
               "top": f"the largest shape there is: all make {STEPS:,} steps in this budget here"}[self.why]
        keys = " ".join(f"{k}={v}" for k, v in self.keys.items())
        said = [f"model.size auto: {self.shape}, {why} (steps that fit, {tried}); {self.timing_seconds:.1f} s of "
                f"timing, a step {self.step_seconds * 1000:.0f} ms, a validation {self.val_seconds:.1f} s",
                f"  chosen: {keys}"]
        if self.epochs > MANY_EPOCHS:
            dropout = self.keys.get("model.decoder_dropout")
            said.append(f"  the text is small ({self.text_chars:,} characters): the plan reads it {self.epochs:,.0f} "
                        f"times, and a model that reads a text this often may learn it by heart"
                        + (f" (dropout {dropout} slows it)" if dropout else "") + "; best.npz keeps the step "
                        "with the lowest validation loss, a warning says when that loss rises, and a shorter "
                        "--time-budget or --steps loses nothing")
        return said


def choose(cfg, origins, inputs, budget):
    """Size cfg for `budget` seconds on inputs (train.Inputs): time shapes of LADDER, pick one, and set
    the keys of OWNED that were left at their defaults (origins says where each value came from; None, a
    config built in code: the keys whose values are the defaults). Returns the Choice; cfg is changed."""
    began = time.monotonic()
    free = _free(cfg, origins)
    measured = {}  # Shape -> (seconds per step, characters per step, seconds per validation), or None

    def steps(shape):
        """The steps shape makes in the budget, validations paid for; -1 if the text is too short for
        its batch (a DataError, raised again if no other shape is left)."""
        if shape not in measured:
            try:
                measured[shape] = _time_shape(cfg, shape, inputs, free, budget)
            except DataError:
                measured[shape] = None
        if measured[shape] is None:
            return -1
        step_s, _, val_s = measured[shape]
        return int(_training_seconds(budget, val_s) / step_s)

    ladder = _ladder(cfg, free)
    low, high = 0, len(ladder) - 1  # the largest shape that reaches STEPS: steps fall along the ladder
    while low < high:
        mid = (low + high + 1) // 2
        if steps(ladder[mid]) >= STEPS:
            low = mid
        else:
            high = mid - 1
    shape = ladder[low]
    if steps(shape) < 0:
        _time_shape(cfg, shape, inputs, free, budget)  # the text is too short even for it: its DataError
    why = ("given" if len(ladder) == 1 else "smallest" if steps(shape) < STEPS
           else "top" if low == len(ladder) - 1 else "largest")
    step_s, chars_per_step, val_s = measured[shape]
    parameters = _parameters(cfg, shape, len(inputs.corpus.vocab))
    keys = _settings(shape, budget, step_s, chars_per_step, val_s, len(inputs.corpus.train), parameters)
    dropout = {k: keys[k] for k in ("model.dropout", "model.decoder_dropout") if k in free and keys[k]}
    if dropout:  # its masks cost time too (a tenth of a small model's step): timed again with them
        step_s, chars_per_step, val_s = measured[shape] = _time_shape(cfg, shape, inputs, free, budget, dropout)
        keys = _settings(shape, budget, step_s, chars_per_step, val_s, len(inputs.corpus.train), parameters)
    keys = {k: v for k, v in keys.items() if k in free}
    config_mod.update(cfg, config_mod.nested(keys), source="model.size auto", check=False)
    cfg.model.size = "fixed"
    config_mod.validate(cfg)
    tried = [(s, steps(s)) for s in ladder if measured.get(s) is not None]
    text_chars = len(inputs.corpus.train)
    epochs = cfg.train.steps * chars_per_step / max(text_chars, 1)
    return Choice(shape, step_s, val_s, tried, time.monotonic() - began, keys, why, epochs, text_chars)


def _free(cfg, origins):
    """The keys of OWNED that auto may set."""
    if origins is not None:
        return {key for key in OWNED if origins.get(key, "default") == "default"}
    def value(config, key):
        section, name = key.split(".")
        return getattr(getattr(config, section), name)

    defaults = config_mod.Config()
    return {key for key in OWNED if value(cfg, key) == value(defaults, key)}


def _ladder(cfg, free):
    """The shapes to choose among: LADDER's with the hidden size and layers the user set, if any (their
    own shape if LADDER has none), each with the user's batch if they set one."""
    given = {name: getattr(cfg.model, name) for name in ("hidden", "layers") if f"model.{name}" not in free}
    shapes = [s for s in LADDER if all(getattr(s, name) == value for name, value in given.items())]
    if not shapes:
        hidden = given.get("hidden", 256)
        shapes = [Shape(hidden, given.get("layers", 2), 64 if hidden > 512 else 32)]
    if "data.batch" not in free:
        shapes = list(dict.fromkeys(dataclasses.replace(s, batch=cfg.data.batch) for s in shapes))
    return shapes


def _settings(shape, budget, step_s, chars_per_step, val_s, corpus_chars, parameters):
    """The values auto gives the keys it owns, for shape trained for budget seconds."""
    validations = _validations(budget, val_s)
    steps = max(int(_training_seconds(budget, val_s) / step_s), 10)
    dropout = _dropout(steps * chars_per_step, parameters, corpus_chars)
    every = -(-steps // validations)  # at most `validations` of them, the last at the last step
    return {"model.hidden": shape.hidden, "model.layers": shape.layers, "data.batch": shape.batch,
            "model.dropout": dropout if shape.layers > 1 else 0.0, "model.decoder_dropout": dropout,
            "optim.lr": 3e-3, "optim.schedule": "cosine", "optim.warmup": min(100, steps // 20),
            "optim.min_lr": 1e-4, "train.steps": steps, "train.eval_every": every, "train.save_every": every,
            "data.val_streams": VAL_STREAMS}


def _dropout(seen, parameters, corpus_chars):
    """Dropout for a model of `parameters` that sees `seen` characters of a text of corpus_chars. A model
    overfits when it sees its text many times (seen / corpus_chars epochs) and has many parameters for
    it (parameters / corpus_chars): the product of the two, the pressure, sets the rate. DROPOUT_AT says
    which rate suits which pressure; the rate grows by 0.1 per doubling of the pressure, at most 0.5."""
    pressure = seen * parameters / max(corpus_chars, 1) ** 2
    if pressure <= 0:
        return 0.0
    reference, rate = DROPOUT_AT
    return round(min(0.5, max(0.0, rate + 0.1 * math.log2(pressure / reference))), 2)



def _validations(budget, val_s):
    return int(min(max(VALIDATION_SHARE * budget / max(val_s, 1e-9), VALIDATIONS[0]), VALIDATIONS[1]))


def _training_seconds(budget, val_s):
    return MARGIN * max(budget - _validations(budget, val_s) * val_s, 0.0)


def _parameters(cfg, shape, vocab):
    spec = model.Spec.of(dataclasses.replace(cfg.model, hidden=shape.hidden, layers=shape.layers), vocab)
    return sum(math.prod(s) for s in model.param_shapes(spec).values())


def _time_shape(cfg, shape, inputs, free, budget, dropout=None):
    """(seconds per step, characters per step, seconds per validation) of shape on this machine, with
    dropout ({"model.dropout": p, ...}) if given, and the user's if they set it."""
    trial = copy.deepcopy(cfg)
    keys = {"model.hidden": shape.hidden, "model.layers": shape.layers, "data.batch": shape.batch, **(dropout or {})}
    if "data.val_streams" in free:
        keys["data.val_streams"] = VAL_STREAMS
    config_mod.update(trial, config_mod.nested(keys), source="model.size auto", check=False)
    corpus = inputs.corpus
    spec = model.Spec.of(trial.model, len(corpus.vocab), trial.data.window)
    batches = make_batches(corpus.train, corpus.vocab, trial.data, trial.train.seed)
    ts = TrainState.new(trial, spec)
    engine = engine_mod.start(spec, trial)
    try:
        engine.adopt(ts)
        seconds = min(max(TIMING[0], TIMING[1] * budget), TIMING[2])
        step_s, chars_per_step, _ = trainstep.time_steps(engine, ts, trial, spec, batches, seconds, (2, 40))
        val_s = _time_validation(engine, ts, trial, corpus)
    finally:
        _close(engine)
    return step_s, chars_per_step, val_s


def _close(engine):
    """Close the engine's workers with Ctrl-C ignored meanwhile: a Ctrl-C during the sizing ends the run
    before it has a directory, and more of them must not cut the workers' shutdown short."""
    if threading.current_thread() is not threading.main_thread():
        return engine.close()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        engine.close()
    finally:
        signal.signal(signal.SIGINT, previous)


def _time_validation(engine, ts, cfg, corpus, sample=8192):
    """Seconds for one validation of the held-out text, from about `sample` characters of it scored as
    it is scored (a prefix of every stream; in lines mode, the first lines), scaled up."""
    streams = validation_streams(corpus, cfg)
    total = sum(len(s) for s in streams)
    if not total:
        return 0.0
    if cfg.data.mode == "lines":
        counts = np.cumsum([len(s) for s in streams])
        part = streams[: int(np.searchsorted(counts, sample)) + 1]
    else:
        part = [s[: max(sample // len(streams), 2)] for s in streams]
    start = time.perf_counter()
    engine.score(ts, part, cfg.data.window)
    return (time.perf_counter() - start) * total / max(sum(len(s) for s in part), 1)

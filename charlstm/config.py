"""Typed configuration: dataclass defaults < a YAML file < command-line overrides.

Every key has a type and a comment; a YAML file or an override naming an unknown key, or giving a value
of the wrong type or outside its choices, is a ConfigError that names the key and what is valid.
"""

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Optional, Tuple

import yaml

from . import cells, optim
from .configfile import read_file
from .errors import ConfigError


def _choice(default, choices, doc):
    """A field whose value must be one of choices: a tuple, or a registry (a dict keyed by the choices),
    read when a value is checked, so that a cell or optimizer registered after import is a valid choice."""
    return field(default=default, metadata={"choices": choices, "doc": doc})


def _doc(default, doc):
    return field(default=default, metadata={"doc": doc})


@dataclass
class ModelConfig:
    cell: str = _choice(cells.DEFAULT, cells.CELLS, "recurrent cell")
    hidden: int = _doc(256, "H, hidden units per layer")
    layers: int = _doc(2, "L, stacked recurrent layers")
    size: str = _choice("by-budget", ("by-budget", "auto", "fixed"),
                        "auto: hidden, layers, batch, dropout and the schedule's length chosen for "
                        "train.time_budget, the corpus and this machine's speed (autosize.py); fixed: as given; "
                        "by-budget: auto when a time budget is given and model.hidden and model.layers are not")
    forget_bias: Optional[float] = _doc(None, "initial forget-gate bias (GRU: update gate); null keeps PyTorch's init")
    chrono: int = _doc(0, "chrono initialisation with this T_max (characters): forget biases log U(1, T_max - 1), "
                          "input biases their negatives (LSTM; GRU: update gate); 0: off")
    open_gates: Optional[float] = _doc(None, "lstm only: initial input- and output-gate bias (e.g. 1: both start "
                                                 "mostly open); null keeps PyTorch's init")
    orthogonal: bool = _doc(False, "each gate's block of the recurrent weights starts as a random orthogonal matrix")
    nonlinearity: str = _doc("tanh", "rnn only: its activation, tanh or relu, as nn.RNN's nonlinearity")
    init_from: Optional[str] = _doc(None, "start from this checkpoint's weights (same cell and shape; characters "
                                          "it lacks start fresh) instead of a random initialisation; "
                                          "forget_bias, chrono, orthogonal and open_gates then change nothing")
    pointer: int = _doc(0, "the width of a pointer over the window's own past (pointer.py): the model may copy "
                           "the character that followed an earlier position, as a name it read once; 0: none")
    dropout: float = _doc(0.0, "dropout on the outputs of every layer but the last, as nn.LSTM(dropout=p)")
    decoder_dropout: float = _doc(0.0, "dropout on the last layer's output, before the decoder")


@dataclass
class DataConfig:
    mode: str = _choice("stream", ("stream", "lines"),
                        "stream: B contiguous streams with the state carried; lines: each line its own sequence")
    batch: int = _doc(32, "B, parallel streams (or lines) per step")
    window: int = _doc(64, "T, characters per stream per step (truncated-BPTT length)")
    val_fraction: float = _doc(0.05, "the last fraction of the text held out for validation (ignored with --val)")
    val_streams: int = _doc(8, "validation runs the held-out text as at most this many streams, of 4,000 characters or more")
    random_offset: bool = _doc(True, "start each epoch at a random offset below T, so windows vary")
    curriculum_steps: int = _doc(0, "lines mode: steps over which batches grow from the shortest lines to all")
    curriculum_start: float = _doc(0.25, "lines mode: the shortest fraction of lines the curriculum starts with")
    curriculum_mix: float = _doc(0.0, "lines mode: the share of each curriculum batch drawn from all the lines")
    vocab: str = _choice("corpus", ("corpus", "ascii"),
                         "corpus: the characters of the text; ascii: those and every printable ASCII character, "
                         "tab and newline, so that prompts with letters the text lacks can still be read")
    loss_pattern: Optional[str] = _doc(None, "a regular expression (Python's re, searched line by line): the "
                                             "training text's characters it matches (those of its groups, if it "
                                             "has any) weigh data.loss_weight in the training loss, e.g. "
                                             "'(\\w+) said hi to (\\w+)'; validation stays unweighted; null: none")
    loss_weight: float = _doc(1.0, "the weight of a character data.loss_pattern matches (the others weigh 1)")
    encoding: str = _doc("utf-8", "text encoding of the corpus files")
    errors: str = _choice("strict", ("strict", "replace"), "invalid bytes: strict stops with an error, replace uses U+FFFD")


def _optim_fields():
    """OptimConfig's fields: the optimizer and its rate, every registered optimizer's options
    (optim.options()), then weight decay, clipping, the schedule and the moving average, which apply to all."""
    decoupled = "/".join(rule.label for rule in optim.OPTIMIZERS.values() if rule.decoupled_decay)
    head = [("name", str, _choice(optim.DEFAULT, optim.OPTIMIZERS, "optimizer, defined as in PyTorch")),
            ("lr", float, _doc(2e-3, "learning rate"))]
    tail = [("weight_decay", float, _doc(0.0, f"L2 penalty ({decoupled}: decoupled decay)")),
            ("clip", float, _doc(5.0, "clip the global gradient norm to this; 0 turns clipping off")),
            ("schedule", str, _choice("constant", ("constant", "step", "cosine"), "learning-rate schedule")),
            ("decay_every", int, _doc(10, "step schedule: epochs between decays (unless decay_steps)")),
            ("decay_steps", int, _doc(0, "step schedule: steps between decays; 0 counts decay_every epochs")),
            ("decay_rate", float, _doc(0.5, "step schedule: factor per decay")),
            ("warmup", int, _doc(0, "cosine schedule: steps of linear warmup")),
            ("min_lr", float, _doc(0.0, "cosine schedule: the rate the cosine reaches at train.steps")),
            ("ema", float, _doc(0.0, "keep an exponential moving average of the weights, this decay per step (e.g. "
                                     "0.998, warmed up as min(ema, (1+t)/(10+t)) at step t); validation, cloze "
                                     "scores and checkpoints use the average; 0: off"))]
    return head + [(o.name, o.kind, _doc(o.default, o.doc)) for o in optim.options()] + tail


OptimConfig = dataclasses.make_dataclass("OptimConfig", _optim_fields())
OptimConfig.__module__ = __name__  # a class of this module, as if written here (pickle, repr)
OptimConfig.__doc__ = "The optimizer's settings (optim.*); the optimizer-specific keys come from optim.OPTIMIZERS."


@dataclass
class TrainConfig:
    steps: int = _doc(10000, "total optimizer steps of the run (a resumed run stops at the same step)")
    time_budget: Optional[str] = _doc(None, "stop cleanly, saving, after training this long, e.g. 10m")
    seed: int = _doc(1234, "seeds initialisation, epoch offsets and dropout; same seed and config, same run")
    log_every: int = _doc(50, "steps between lines in metrics.jsonl")
    eval_every: int = _doc(500, "steps between validation passes (and best.npz updates)")
    save_every: int = _doc(500, "steps between writes of latest.npz")
    val_max_chars: Optional[int] = _doc(None, "held-out characters each validation scores: null, all of them up to "
                                              "256,000 and beyond that a fixed sample of 256,000 spread over them "
                                              "(heldout.py); a number, a sample of at most that many; 0: all")
    cloze: Optional[str] = _doc(None, "a PROMPT<TAB>ANSWER file scored by greedy blank filling during training")
    cloze_every: int = _doc(0, "steps between cloze scorings; 0 scores at every validation")
    on_save_error: str = _choice("stop", ("stop", "continue"), "when a checkpoint cannot be written")
    workers: int = _doc(0, "numpy engine: processes sharing each batch (one per core, see parallel.py); 0 chooses")
    engine: str = _choice("numpy", ("numpy", "torch"), "what computes the steps: numpy, or PyTorch (pip install "
                                                       "torch; torchrun for many processes)")
    device: str = _choice("cpu", ("cpu", "cuda", "mps"), "torch engine: where the model trains")


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}


def _coerce(key, value, f):
    """value converted to field f's type, or a ConfigError naming the key."""
    kind, choices = f.type, f.metadata.get("choices")
    if value is None:
        if kind in OPTIONAL:
            return None
        raise ConfigError(f"{key} cannot be null")
    kind = OPTIONAL.get(kind, kind)
    if kind == Tuple[float, float]:
        if isinstance(value, (list, tuple)) and len(value) == 2:
            return tuple(_scalar(key, v, float, None) for v in value)
        raise ConfigError(f"{key} must be a pair of numbers such as [0.9, 0.999], not {value!r}")
    return _scalar(key, value, kind, choices)


OPTIONAL = {Optional[float]: float, Optional[str]: str, Optional[int]: int}
TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _scalar(key, value, kind, choices):
    if isinstance(value, bool):
        ok = kind is bool
    elif kind is float and isinstance(value, str):  # YAML 1.1 reads 3e-3 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            ok = False
    elif kind is float:
        ok = isinstance(value, (int, float))
    elif kind is str and isinstance(value, (int, float)) and not choices:
        value, ok = str(value), True
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ConfigError(f"{key} must be {TYPE_NAMES[kind]}, not {value!r}")
    choices = tuple(choices or ())
    if choices and value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)}, not {value!r}")
    return float(value) if kind is float else value


def _field(section, key):
    cls = SECTIONS.get(section)
    if cls is None:
        raise ConfigError(f"unknown config section {section!r}; valid sections: {', '.join(SECTIONS)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if key not in fields:
        raise ConfigError(f"unknown config key {section}.{key}; valid keys in {section}: {', '.join(fields)}")
    return fields[key]


def update(config, mapping, source="config", check=True):
    """Apply a nested mapping {section: {key: value}} to config, checking every key and type, then
    (unless check=False) the combination with validate()."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source} must be a mapping of sections ({', '.join(SECTIONS)})")
    for section, values in mapping.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown config section {section!r} in {source}; valid sections: {', '.join(SECTIONS)}")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"section {section} in {source} must be a mapping of keys to values")
        for key, value in values.items():
            f = _field(section, key)
            setattr(getattr(config, section), key, _coerce(f"{section}.{key}", value, f))
    if check:
        validate(config)
    return config


def load(path=None, overrides=()):
    """Defaults, then the YAML file at path (if any), then overrides: a list of "section.key=value"."""
    config = Config()
    if path is not None:
        update(config, read_file(path), source=str(path), check=False)  # checked once the overrides are in
    return update(config, parse_overrides(overrides), source="--set")


def origins(layers):
    """Where each key's value comes from: {"section.key": label}, "default" unless one of the layers,
    [(label, {section: {key: value}}), ...] applied in order, sets it. What --dry-run shows."""
    found = {f"{section}.{f.name}": "default" for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    for label, mapping in layers:
        for section, values in (mapping or {}).items():
            for key in values or {}:
                found[f"{section}.{key}"] = label
    return found


def nested(keys):
    """{"optim.lr": 3e-3, ...} -> {"optim": {"lr": 3e-3}}: flat keys as update() takes them."""
    mapping = {}
    for key, value in keys.items():
        section, name = key.split(".")
        mapping.setdefault(section, {})[name] = value
    return mapping


def parse_overrides(overrides):
    """["optim.lr=3e-3", ...] -> {"optim": {"lr": 0.003}}; values are read as YAML scalars or lists."""
    mapping = {}
    for item in overrides:
        match = re.fullmatch(r"\s*(\w+)\.(\w+)\s*=(.*)", item, flags=re.S)
        if not match:
            raise ConfigError(f"--set takes section.key=value, not {item!r}")
        section, key, text = match.groups()
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text.strip()
        if isinstance(value, str) and not text.strip().startswith(("'", '"')):
            value = text.strip()  # a string as typed: YAML would cut "a #1" at the comment
        mapping.setdefault(section, {})[key] = value
    return mapping


def validate(config):
    """Checks that span more than one value's type (and the choices, for values set directly)."""
    m, d, o, t = config.model, config.data, config.optim, config.train
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.metadata.get("choices"):
                value = getattr(getattr(config, section), f.name)
                _scalar(f"{section}.{f.name}", value, str, f.metadata["choices"])
    positive = {"model.hidden": m.hidden, "model.layers": m.layers, "data.batch": d.batch,
                "data.window": d.window, "data.val_streams": d.val_streams, "train.log_every": t.log_every,
                "train.eval_every": t.eval_every, "train.save_every": t.save_every,
                "optim.decay_every": o.decay_every}
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be at least 1, not {value}")
    counts = {"train.steps": t.steps, "train.val_max_chars": t.val_max_chars or 0, "optim.warmup": o.warmup,
              "optim.decay_steps": o.decay_steps, "train.seed": t.seed, "data.curriculum_steps": d.curriculum_steps,
              "train.cloze_every": t.cloze_every, "train.workers": t.workers}
    for key, value in counts.items():
        if value < 0:
            raise ConfigError(f"{key} cannot be negative, not {value}")
    if o.decay_steps and o.schedule != "step":  # else it would be ignored without a word
        raise ConfigError(f"optim.decay_steps counts the step schedule's steps: set optim.schedule step, not {o.schedule}")
    if d.mode == "lines" and d.window < 2:
        raise ConfigError("data.mode lines needs data.window of at least 2 (a character and its successor)")
    if not 0.0 < d.curriculum_start <= 1.0:
        raise ConfigError(f"data.curriculum_start must be in (0, 1], not {d.curriculum_start}")
    if not 0.0 <= d.curriculum_mix <= 1.0:
        raise ConfigError(f"data.curriculum_mix must be in [0, 1], not {d.curriculum_mix}")
    for key, value in {"model.dropout": m.dropout, "model.decoder_dropout": m.decoder_dropout}.items():
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{key} must be in [0, 1), not {value}")
    if not (math.isfinite(d.loss_weight) and d.loss_weight > 0):
        raise ConfigError(f"data.loss_weight must be a positive finite number, not {d.loss_weight}")
    if d.loss_pattern:
        try:
            re.compile(d.loss_pattern)
        except re.error as e:
            raise ConfigError(f"data.loss_pattern is not a valid regular expression: {e}") from None
    elif d.loss_weight != 1.0:
        raise ConfigError("data.loss_weight weighs what data.loss_pattern matches: give a pattern too")
    if not 0.0 <= d.val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be in [0, 1), not {d.val_fraction}")
    positive = ["lr", *(x.name for x in optim.options() if x.within == "positive")]
    unit = [*(x.name for x in optim.options() if x.within == "unit"), "ema"]
    # written as "not (x > 0)" so that NaN fails too
    if not (all(getattr(o, k) > 0 for k in positive) and o.clip >= 0 and o.weight_decay >= 0 and o.min_lr >= 0):
        raise ConfigError(f"{_keys(positive)} must be positive; clip, weight_decay and min_lr not negative")
    finite = [*positive, "clip", "weight_decay", "min_lr", "decay_rate"]
    if not all(math.isfinite(getattr(o, k)) for k in finite):
        raise ConfigError(f"{_keys(finite)} must be finite numbers")
    if not all(0.0 <= v < 1.0 for k in unit for v in _each(getattr(o, k))):
        raise ConfigError(f"{_keys(unit)} must each lie in [0, 1)")
    for rule in optim.OPTIMIZERS.values():
        problem = rule.check(o)
        if problem:
            raise ConfigError(problem)
    for key, bias in {"model.forget_bias": m.forget_bias, "model.open_gates": m.open_gates}.items():
        if bias is not None and not math.isfinite(bias):  # else every step's loss is nan
            raise ConfigError(f"{key} must be a finite number or null, not {bias}")
    for key, used in {"model.forget_bias": m.forget_bias is not None, "model.chrono": m.chrono}.items():
        if used and cells.CELLS[m.cell].FORGET_GATE is None:
            gated = " or ".join(name for name, cell in cells.CELLS.items() if cell.FORGET_GATE is not None)
            raise ConfigError(f"{key} needs a gated cell ({gated}); the {m.cell} cell has no forget gate")
    if m.open_gates is not None and m.chrono:
        raise ConfigError("model.chrono sets the input biases itself: leave model.open_gates null")
    if m.init_from and m.size == "auto":
        raise ConfigError("model.size auto chooses a shape, model.init_from starts from a checkpoint's: give one")
    if d.curriculum_mix and (d.mode != "lines" or not d.curriculum_steps):
        raise ConfigError("data.curriculum_mix mixes lines into a curriculum's batches: it needs data.mode lines "
                          "and data.curriculum_steps")
    if m.open_gates is not None and getattr(cells.CELLS[m.cell], "OUTPUT_GATE", None) is None:
        raise ConfigError(f"model.open_gates needs input and output gates (an lstm); the {m.cell} cell has none")
    if m.chrono and m.forget_bias is not None:
        raise ConfigError("model.chrono sets the forget biases itself: leave model.forget_bias null")
    if m.nonlinearity != "tanh":
        choices = getattr(cells.CELLS[m.cell], "NONLINEARITIES", ("tanh",))
        if m.nonlinearity not in choices:
            takers = [name for name, cell in cells.CELLS.items() if m.nonlinearity in getattr(cell, "NONLINEARITIES", ())]
            raise ConfigError(f"model.nonlinearity {m.nonlinearity!r} needs the {' or '.join(takers) or '?'} cell; "
                              f"the {m.cell} cell takes {', '.join(choices)}")
    if m.pointer < 0:
        raise ConfigError(f"model.pointer must be 0 (none) or the pointer's width, not {m.pointer}")
    if m.pointer and t.engine != "numpy":
        raise ConfigError("model.pointer is the numpy engine's: the torch engine has no pointer (--engine numpy)")
    if m.chrono < 0 or m.chrono == 1:
        raise ConfigError(f"model.chrono must be 0 (off) or a T_max of at least 2 characters, not {m.chrono}")
    if t.time_budget is not None:
        parse_duration(t.time_budget)
    elif m.size == "auto":
        raise ConfigError("model.size auto sizes the run for its time budget: give --time-budget too")
    if t.engine == "numpy" and t.device != "cpu":
        raise ConfigError(f"train.device {t.device} needs train.engine torch; the numpy engine runs on "
                          f"the CPU (--device cpu)")


def _each(value):
    return value if isinstance(value, tuple) else (value,)


def _keys(names):
    """["lr", "eps", "ema"] -> "optim.lr, optim.eps and optim.ema"."""
    keys = [f"optim.{name}" for name in names]
    return ", ".join(keys[:-1]) + " and " + keys[-1] if len(keys) > 1 else keys[0]


def parse_duration(text):
    """'90s', '10m', '1h30m', '1.5h' or a plain number of seconds -> seconds (float)."""
    text = str(text).strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ConfigError(f"time budget must be a non-negative duration, not {text!r}")
        return seconds
    parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s)?", text)
    if not text or not parts or not any(parts.groups()):
        raise ConfigError(f"time budget must look like 90s, 10m, 1h30m or a number of seconds, not {text!r}")
    h, m, s = (float(g) if g else 0.0 for g in parts.groups())
    return h * 3600 + m * 60 + s


def to_dict(config):
    d = dataclasses.asdict(config)
    d["optim"]["betas"] = list(d["optim"]["betas"])
    return d


def from_dict(mapping):
    return update(Config(), mapping, source="checkpoint")


def dump(config, notes=None):
    """The config as commented YAML, every key with its meaning: what train saves as RUN_DIR/config.yaml.
    notes: {"section.key": comment} to write instead of the meanings, in a column (--dry-run's origins)."""
    rows = []  # (line, comment)
    for section in SECTIONS:
        rows.append((f"{section}:", None))
        for f in dataclasses.fields(SECTIONS[section]):
            value = getattr(getattr(config, section), f.name)
            value = list(value) if isinstance(value, tuple) else value
            text = yaml.safe_dump(value, default_flow_style=True, width=float("inf")).strip()
            text = text[: -len("...")].strip() if text.endswith("...") else text
            note = f.metadata["doc"] if notes is None else notes[f"{section}.{f.name}"]
            rows.append((f"  {f.name}: {text}", note))
    width = min(max(len(line) for line, _ in rows), 32) if notes is not None else 0  # a long path sticks out
    return "".join(line + "\n" if note is None else f"{line.ljust(width)}  # {note}\n" for line, note in rows)

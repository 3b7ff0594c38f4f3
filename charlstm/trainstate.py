"""The training state, and its trip to a checkpoint and back: saving and restoring written side by side.

A run's state is its weights, the optimizer's slots (and with optim.ema its moving average of the
weights), the recurrent state carried into the next window, and its progress (step, best and last
validation, time spent). The step fixes the position in the data and every random stream, so this is
all a resumed run needs to continue bit for bit. With optim.ema the checkpoint's model entries hold the
average, the model the run evaluates, and optim.weights.<param> the weights the optimizer steps.
"""

import hashlib
import math
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import checkpoint, finetune, model
from . import config as config_mod
from .cells import CELLS
from .data import hash_ids
from .errors import CharlstmError, CheckpointError
from .optim import Optimizer


@dataclass
class Progress:
    """How far the run is. The next window is window (step mod W) of epoch (step div W), W windows an
    epoch, so the step alone places the run in the data."""

    step: int = 0
    best_val: float = math.inf
    best_step: int = -1
    elapsed: float = 0.0  # seconds of training over all sessions of this run
    last_val: float = math.nan
    last_val_step: int = -1  # the step last_val was measured at

    def validated(self, val):
        """Record a validation loss at this step; returns whether it is the lowest so far (the best)."""
        self.last_val, self.last_val_step = val, self.step
        improved = val < self.best_val
        if improved:
            self.best_val, self.best_step = val, self.step
        return improved

    def to_meta(self, windows_per_epoch):
        epoch, window = divmod(self.step, windows_per_epoch)
        return {"step": self.step, "epoch": epoch, "window": window,
                "best_val": None if math.isinf(self.best_val) else self.best_val, "best_step": self.best_step,
                "last_val": None if math.isnan(self.last_val) else self.last_val,
                "last_val_step": self.last_val_step,
                # the validation loss of these very weights, if they were validated: how -c RUN_DIR chooses
                "val_loss": self.last_val if self.last_val_step == self.step else None,
                "elapsed": self.elapsed}

    @classmethod
    def from_meta(cls, m):
        return cls(step=int(m["step"]), best_val=_or(m.get("best_val"), math.inf),
                   best_step=int(m.get("best_step", -1)), elapsed=float(m["elapsed"]),
                   last_val=_or(m.get("last_val"), math.nan), last_val_step=int(m.get("last_val_step", -1)))


def _or(value, default):
    return default if value is None else value


@dataclass(frozen=True)
class RunInfo:
    """What every checkpoint of a run records besides its state: config, vocabulary and corpus."""

    config: object  # config.Config
    vocab: object  # vocab.Vocab
    corpus: dict  # see corpus_record
    windows_per_epoch: int  # W: places a step in the data
    origin: Optional[dict] = None  # a fine-tuned run's: the checkpoint it started from (finetune.origin)


def corpus_record(corpus, val_source):
    """What a checkpoint records of the text: its files (absolute, so a run resumes from anywhere), the
    validation file, sizes, and a SHA-256 fingerprint that resume checks the text against."""
    h = hashlib.sha256()
    hash_ids(h, corpus.train)  # no copy of a large corpus, and the pages of a mapped one let go
    h.update(b"|")
    hash_ids(h, corpus.val)
    return {"files": [f if f == "-" else os.path.abspath(f) for f in corpus.files],
            "val_file": val_source and os.path.abspath(val_source), "sha256": h.hexdigest(),
            "train_chars": int(len(corpus.train)), "val_chars": int(len(corpus.val))}


def recorded_sources(ckpt, sources, val_source):
    """The corpus and validation file to resume with: those given, else those the checkpoint names."""
    recorded = ckpt.meta.get("corpus") or {}
    if not sources:
        sources = recorded.get("files") or []
        if not sources or "-" in sources:
            run = ckpt.path.parent
            raise CharlstmError(f"{run} was trained on stdin; give the corpus again to resume, on stdin: "
                                f"cat CORPUS | charlstm train - --resume {run}")
    return sources, recorded.get("val_file") if val_source is None else val_source


def check_same_corpus(ckpt, vocab, record):
    """Resume needs the text the run was trained on: the same vocabulary and fingerprint."""
    recorded = ckpt.meta.get("corpus") or {}
    if ckpt.vocab.chars != vocab.chars or recorded.get("sha256") != record["sha256"]:
        raise CharlstmError(f"the corpus differs from the one {ckpt.path.parent} was trained on "
                            f"({', '.join(recorded.get('files') or ['?'])}); resume needs the same text")


@dataclass
class TrainState:
    """Everything that changes as a run trains."""

    params: dict  # the weights the optimizer steps (float32, PyTorch names)
    optimizer: Optimizer  # its slots, and with optim.ema the moving average
    state: tuple  # the recurrent state carried into the next window, one (L, B, H) array per STATE entry
    progress: Progress

    @classmethod
    def new(cls, cfg, spec, vocab=None, source=None):
        """The state at step 0: PyTorch's initialisation, drawn from a generator seeded by train.seed, or
        with model.init_from the weights of that checkpoint (finetune.warm_start; vocab: this run's;
        source: the checkpoint, if already loaded). The optimizer starts from zero either way."""
        m = cfg.model
        params = model.init_params(spec, np.random.default_rng([cfg.train.seed, 0]), np.float32, m.forget_bias,
                                   m.chrono, m.orthogonal, m.open_gates)
        if m.init_from:
            finetune.warm_start(params, spec, vocab, source or finetune.load_source(m.init_from))
        return cls(params, Optimizer(cfg.optim, params), model.zero_state(spec, cfg.data.batch), Progress())

    def model_params(self):
        """The model the run evaluates and saves: the moving average with optim.ema, else the weights."""
        return self.params if self.optimizer.average is None else self.optimizer.average

    def save(self, path, info):
        """Write the state to a checkpoint (atomically; CheckpointWriteError if the disk refuses)."""
        arrays = dict(self.model_params())
        if self.optimizer.average is not None:
            arrays.update({f"optim.weights.{k}": a for k, a in self.params.items()})
        arrays.update({f"optim.{k}": a for k, a in self.optimizer.state_arrays().items()})
        arrays.update({f"state.{name}": s for name, s in zip(CELLS[info.config.model.cell].STATE, self.state)})
        meta = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "vocab": info.vocab.chars,
                "config": config_mod.to_dict(info.config), "corpus": info.corpus,
                **({"init_from": info.origin} if info.origin else {}), **self.progress.to_meta(info.windows_per_epoch)}
        checkpoint.write(path, arrays, meta)

    @classmethod
    def restore(cls, ckpt, cfg):
        """The state saved in a checkpoint.Checkpoint, for a run configured by cfg (its config, or that
        with the changes resume allows)."""
        try:
            saved = ckpt.params  # the model: with optim.ema the average, and the weights are optimizer state
            stepped = {k: ckpt.optim[f"weights.{k}"] for k in saved} if cfg.optim.ema else saved
            params = {k: np.array(v, np.float32) for k, v in stepped.items()}
            optimizer = Optimizer(cfg.optim, params)
            if optimizer.average is not None:
                for k, a in optimizer.average.items():
                    a[...] = saved[k]
            optimizer.load_state_arrays(ckpt.optim, int(ckpt.meta["step"]))
            state = tuple(np.array(s, np.float32) for s in ckpt.state)
            return cls(params, optimizer, state, Progress.from_meta(ckpt.meta))
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{ckpt.path} lacks the training state needed to resume ({e})") from None

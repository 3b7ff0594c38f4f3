"""The training loop: truncated BPTT over a corpus, validation, checkpoints, resume, clean stops.

A run lives in one directory:
    config.yaml     the effective configuration, with a comment on every key
    metrics.jsonl   one JSON object per log interval and per validation
    latest.npz      the whole training state: at the start, every train.save_every steps and at the end
    best.npz        the same, at the lowest validation loss so far
    .lock           held (flock) while a process trains here; released by the kernel if it dies
Nothing is created before the corpus and the settings have been read and checked, and a new run that
fails before saving a step removes what it wrote. A run that stops (end of steps, time budget, signal)
saves latest.npz, then validates there if it has not just done so; that validation counts for best.npz
like the scheduled ones, and both checkpoints record the validation loss of their weights, so that
`-c RUN_DIR` can hand out the better of the two (checkpoint.choose).
With optim.ema the model in both checkpoints is the moving average of the weights, which is also what
validation and the cloze scores measure; the weights the optimizer steps are saved as optimizer state.

Determinism: the same config and seed give the same run bit for bit, and a run stopped at any step and
resumed reaches the same weights as one that never stopped. Every random draw comes from a generator
seeded by train.seed and the position in the run (epoch offsets and line order by (seed, epoch), dropout
masks by (seed, step)), so the step saved in latest.npz, with the weights, optimizer moments and carried
state, is all a resumed run needs. Validation draws nothing random and changes nothing but the record of
the best, so the validation at a stop leaves the training itself untouched: a resumed run reaches the
same weights as an uninterrupted one, but may call another step best (the stop's validation), and
best.npz may differ.
"""

import copy
import dataclasses
import hashlib
import json
import math
import os
import pathlib
import signal
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import checkpoint, evaluate, model
from . import config as config_mod
from . import engine as engine_mod
from .cells import CELLS
from .data import load_corpus, make_batches, split_streams
from .errors import CharlstmError, CheckpointError, ConfigError, DataError, TrainingError
from .optim import Optimizer, clip_by_global_norm, learning_rate
from .workspace import Workspace

try:
    import fcntl
except ImportError:  # not on Windows: runs there are simply not locked
    fcntl = None


class Interrupted(CharlstmError):
    """Training stopped on SIGINT or SIGTERM after saving; carries the exit status (130 or 143)."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


# ------------------------------------------------------------------------------------------ run folder


class RunLock:
    """An exclusive flock on RUN_DIR/.lock. The kernel drops it when the holder dies, so a crashed run
    never blocks the next one; a live one makes a second `charlstm train` on the same directory fail."""

    def __init__(self, directory):
        self.path = pathlib.Path(directory) / ".lock"
        self.fh = None

    def __enter__(self):
        if fcntl is None:
            return self
        try:
            self.fh = open(self.path, "a+")
        except OSError as e:
            raise CharlstmError(f"cannot use run directory {self.path.parent}: {e.strerror}") from None
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fh.seek(0)
            holder = self.fh.read().strip() or "unknown"
            self.fh.close()
            raise CharlstmError(f"run directory {self.path.parent} is in use by another charlstm train "
                                f"(pid {holder}); wait for it or choose another --out") from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"{os.getpid()}\n")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        if self.fh is not None:
            self.fh.close()  # closing releases the lock; the file stays, harmlessly


class RunDirectory:
    """The run directory of one session: created, with any missing parents, once the inputs are known to
    be good, and locked while the session lasts. A new run that fails before it has saved a step (or the
    lock cannot be had) removes the files it wrote and the directories it created, so a failed start
    leaves no runs/NAME holding only .lock; `keep()` marks the run as worth keeping."""

    FILES = ("latest.npz", "best.npz", "metrics.jsonl", "config.yaml", ".lock")

    def __init__(self, path, fresh):
        self.path, self.fresh, self.kept = pathlib.Path(path), fresh, not fresh
        self.created, self.existed = [], set()
        self.lock = RunLock(self.path)

    def __enter__(self):
        missing, p = [], self.path.absolute()
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.created = [d for d in missing if d.is_dir()]  # innermost first
            self._remove_what_was_written()
            raise CharlstmError(f"cannot create run directory {self.path}: {e.strerror}") from None
        self.created = missing  # innermost first
        self.existed = {name for name in self.FILES if (self.path / name).exists()}
        try:
            self.lock.__enter__()
        except BaseException:
            self._remove_what_was_written()
            raise
        return self

    def keep(self):
        self.kept = True

    def forget_old_run(self):
        """--force: nothing of the run that was here may linger (we hold the lock)."""
        for name in ("latest.npz", "best.npz", "metrics.jsonl"):
            (self.path / name).unlink(missing_ok=True)
            self.existed.discard(name)

    def __exit__(self, exc_type, exc, tb):
        self.lock.__exit__()
        if exc_type is None or self.kept:
            return
        # a stop on a signal keeps the run it can resume: the latest.npz saved at its start
        if not issubclass(exc_type, Interrupted) or not (self.path / "latest.npz").exists():
            self._remove_what_was_written()

    def _remove_what_was_written(self):
        for name in self.FILES:
            if name not in self.existed:
                (self.path / name).unlink(missing_ok=True)
        remove_stale_temporaries(self.path)
        for d in self.created:
            try:
                d.rmdir()  # only if empty: never a file of the user's
            except OSError:
                break


def remove_stale_temporaries(directory):
    """Temporary checkpoint files left by a process that died while writing (we hold the lock, so none
    of them can be in use)."""
    for p in pathlib.Path(directory).glob(f".*{checkpoint.TMP_SUFFIX}"):
        try:
            p.unlink()
        except OSError:
            pass


def default_run_dir(sources, root="runs", name=None):
    """runs/<name>, by default the first corpus file's name, numbered -2, -3 ... if that holds a run."""
    first = sources[0] if sources else "stdin"
    name = name or ("stdin" if first == "-" else pathlib.Path(first).stem or "run")
    base = pathlib.Path(root) / name
    candidate, n = base, 1
    while (candidate / "latest.npz").exists() or (candidate / "best.npz").exists():
        n += 1
        candidate = base.with_name(f"{name}-{n}")
    return candidate


# ---------------------------------------------------------------------------------------------- state


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


def corpus_fingerprint(corpus):
    h = hashlib.sha256()
    h.update(memoryview(np.ascontiguousarray(corpus.train)))  # no copy of a large corpus
    h.update(b"|")
    h.update(memoryview(np.ascontiguousarray(corpus.val)))
    return h.hexdigest()


def save(path, params, opt, state, cfg, vocab, progress, corpus_info, windows_per_epoch):
    cell = CELLS[cfg.model.cell]
    epoch, window = divmod(progress.step, windows_per_epoch)
    if opt.average is None:
        arrays = dict(params)
    else:  # the model is the average; the weights the steps move are optimizer state
        arrays = dict(opt.average)
        arrays.update({f"optim.weights.{k}": a for k, a in params.items()})
    arrays.update({f"optim.{k}": a for k, a in opt.state_arrays().items()})
    arrays.update({f"state.{name}": s for name, s in zip(cell.STATE, state)})
    meta = {
        "format": checkpoint.FORMAT,
        "version": checkpoint.VERSION,
        "vocab": vocab.chars,
        "config": config_mod.to_dict(cfg),
        "step": progress.step,
        "epoch": epoch,
        "window": window,
        "best_val": None if math.isinf(progress.best_val) else progress.best_val,
        "best_step": progress.best_step,
        "last_val": None if math.isnan(progress.last_val) else progress.last_val,
        "last_val_step": progress.last_val_step,
        # the validation loss of these very weights, if they were validated: how -c RUN_DIR chooses
        "val_loss": progress.last_val if progress.last_val_step == progress.step else None,
        "elapsed": progress.elapsed,
        "corpus": corpus_info,
    }
    checkpoint.write(path, arrays, meta)


# ------------------------------------------------------------------------------------------- training


def train_step(engine, params, optimizer, window, state, lr, clip, dropout=None):
    """One optimizer step on one data.Window: forward and backward (by the engine, on the params it
    adopted), global-norm clipping, update; dropout is a model.Dropout or None.
    Returns (loss, gradient norm before clipping, state to carry into the next window). When the loss or
    the norm is not finite, nothing is updated and the incoming state is returned, for the caller to stop
    with one line (so NumPy's warnings about overflows on the way there are silenced).
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        loss, next_state, grads = engine.forward_backward(params, window, state, dropout)
        if not math.isfinite(loss):
            return loss, math.nan, state
        norm = clip_by_global_norm(grads, clip)
        if not math.isfinite(norm):
            return loss, norm, state
        optimizer.update(params, grads, lr)
    return loss, norm, next_state


class Trainer:
    """Everything one training session holds; `run` drives it."""

    def __init__(self, cfg, sources, out_dir, val_source=None, resume=False, quiet=False, force=False,
                 stderr=None):
        self.cfg = cfg
        self.out = pathlib.Path(out_dir)
        self.quiet = quiet
        self.stderr = stderr or sys.stderr
        self.resume = resume
        self.sources = list(sources)
        self.val_source = val_source
        self.force = force
        self.stops = StopRequests(self.stderr, quiet)
        self.run_dir = None  # the RunDirectory, while run() holds it
        self.saved_step = None  # the step latest.npz holds, once known
        self.bar = None
        self.last_loss, self.last_speed, self.last_cloze = math.nan, 0.0, None
        self.session_chars = 0  # characters trained on this session (targets that count, not padding)
        self.metrics_failed = False
        self.engine = None  # what computes the steps (engine.py)
        self.origins = None  # {"section.key": where its value came from}, for --dry-run (see prepare)

    # -- messages --------------------------------------------------------------------------------------

    def say(self, text):
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stderr)
        else:
            print(text, file=self.stderr, flush=True)

    # -- setup -----------------------------------------------------------------------------------------

    def _setup(self):
        cfg = self.cfg
        ckpt = None
        if self.resume:
            ckpt = checkpoint.load(self.out / "latest.npz")
            corpus_meta = ckpt.meta.get("corpus") or {}
            if not self.sources:
                self.sources = corpus_meta.get("files") or []
                if not self.sources or "-" in self.sources:
                    raise CharlstmError(f"{self.out} was trained on stdin; give the corpus again to resume")
            if self.val_source is None:
                self.val_source = corpus_meta.get("val_file")
        self.corpus = load_corpus(self.sources, cfg.data, self.val_source)
        fingerprint = corpus_fingerprint(self.corpus)
        if ckpt is not None:
            if ckpt.vocab.chars != self.corpus.vocab.chars or corpus_meta.get("sha256") != fingerprint:
                raise CharlstmError(f"the corpus differs from the one {self.out} was trained on "
                                    f"({', '.join(corpus_meta.get('files') or ['?'])}); resume needs the same text")
        self.corpus_info = {"files": [f if f == "-" else os.path.abspath(f) for f in self.corpus.files],
                            "val_file": self.val_source and os.path.abspath(self.val_source), "sha256": fingerprint,
                            "train_chars": int(len(self.corpus.train)), "val_chars": int(len(self.corpus.val))}
        self.batches = make_batches(self.corpus.train, self.corpus.vocab, cfg.data, cfg.train.seed)
        if self.batches.cut:
            self.say(f"note: {self.batches.cut} lines are longer than data.window - 1 = {cfg.data.window - 1} "
                     f"characters; each is trained in pieces, every piece from the zero state")
        self.spec = model.Spec(cfg.model.cell, len(self.corpus.vocab), cfg.model.hidden, cfg.model.layers)
        if ckpt is None:
            rng = np.random.default_rng([cfg.train.seed, 0])
            self.params = model.init_params(self.spec, rng, np.float32, cfg.model.forget_bias,
                                           cfg.model.chrono, cfg.model.orthogonal)
            self.opt = Optimizer(cfg.optim, self.params)
            self.state = model.zero_state(self.spec, cfg.data.batch)
            self.progress = Progress()
        else:
            m = ckpt.meta
            try:
                # with optim.ema the saved model is the average, and the stepped weights are optimizer state
                stepped = {k: ckpt.optim[f"weights.{k}"] for k in ckpt.params} if cfg.optim.ema else ckpt.params
                self.params = {k: np.array(v, np.float32) for k, v in stepped.items()}
                self.opt = Optimizer(cfg.optim, self.params)
                if self.opt.average is not None:
                    for k, a in self.opt.average.items():
                        a[...] = ckpt.params[k]
                self.opt.load_state_arrays(ckpt.optim, int(m["step"]))
                self.state = tuple(np.array(s, np.float32) for s in ckpt.state)
                self.progress = Progress(step=int(m["step"]), best_val=_or(m.get("best_val"), math.inf),
                                         best_step=int(m.get("best_step", -1)), elapsed=float(m["elapsed"]),
                                         last_val=_or(m.get("last_val"), math.nan),
                                         last_val_step=int(m.get("last_val_step", -1)))
                self.saved_step = self.progress.step
            except (KeyError, TypeError, ValueError) as e:
                raise CheckpointError(f"{ckpt.path} lacks the training state needed to resume ({e})") from None
        self.val_streams = self._val_streams()
        self._check_validation_text()
        if cfg.data.mode == "lines" and cfg.data.curriculum_steps > self.progress.step:
            self.say(f"note: curriculum until step {cfg.data.curriculum_steps:,}: training draws the shortest "
                     f"{cfg.data.curriculum_start:.0%} of the lines first, widening to all of them, so the training "
                     f"loss starts well below the validation loss; that is expected, not overfitting")
        self.cloze = evaluate.read_cloze(cfg.train.cloze) if cfg.train.cloze else None
        self.engine = engine_mod.start(self.spec, cfg.data.batch, cfg.data.window, cfg.train.workers)
        self.params = self.engine.adopt(self.params)  # the optimizer updates the arrays the engine reads

    def _check_validation_text(self):
        """A --val text too short to score is an error, as `charlstm eval` makes it; a held-out part too
        short to score gets a note (no validation, so no best.npz)."""
        chars = len(self.corpus.val)
        if sum(len(s) - 1 for s in self.val_streams if len(s) >= 2) > 0:
            return
        if self.val_source is not None:
            raise DataError(f"the validation text {self.val_source} has {chars} character{'s' * (chars != 1)}: "
                            f"too short to score (it needs at least two)")
        if self.cfg.data.val_fraction > 0:
            self.say(f"note: the held-out text ({chars} characters) is too short to validate on: no validation "
                     f"and no best.npz (give --val FILE, more text, or a larger data.val_fraction)")

    def _val_streams(self):
        """Held-out text as the model is trained on it: contiguous streams, or one sequence per line."""
        limit = self.cfg.train.val_max_chars
        ids = self.corpus.val[:limit] if limit else self.corpus.val
        if self.cfg.data.mode != "lines":
            return split_streams(ids, self.cfg.data.val_streams)
        newline = self.corpus.vocab.index["\n"]
        ends = np.flatnonzero(ids == newline).tolist()
        starts = [-1] + ends
        return [np.concatenate([[newline], ids[a + 1 : b], [newline]]) for a, b in zip(starts, ends + [len(ids)])
                if b > a + 1]

    # -- the loop --------------------------------------------------------------------------------------

    def run(self):
        """Train: read and check the inputs, then create and lock the run directory and go. Returns the
        summary dict; raises Interrupted after a stop on a signal (the run saved, or aborted on a third
        Ctrl-C) and CharlstmError for everything a user can fix."""
        if not self.resume:
            self._check_out_is_free()  # early: before a long read of the corpus
        try:
            self._setup()
            with RunDirectory(self.out, fresh=not self.resume) as self.run_dir:
                remove_stale_temporaries(self.out)
                if not self.resume:
                    self._check_out_is_free()  # again, now that we hold the lock
                    if self.force:
                        self.run_dir.forget_old_run()
                _write_text(self.out / "config.yaml", config_mod.dump(self.cfg))
                self._trim_metrics()
                with _signals(self.stops):  # also while the workers close: a Ctrl-C there is no abort
                    try:
                        return self._train()
                    finally:
                        self._close_workers()
        finally:
            self._close_workers()
            self.run_dir = None

    def dry_run(self):
        """Read and check everything a run would, build the model, time a few steps, and return the
        lines of the --dry-run report; nothing is written."""
        from . import dryrun

        try:
            self._setup()
            return dryrun.report(self)
        finally:
            self._close_workers()

    def _check_out_is_free(self):
        if (self.out / "latest.npz").exists() and not self.force:
            raise CharlstmError(f"{self.out} already holds a run; resume it with --resume {self.out}, "
                                f"or choose another --out (--force starts over and overwrites it)")

    def _close_workers(self):
        if self.engine is not None:
            self.engine.close()

    def _train(self):
        """The loop, with a third Ctrl-C (an abort) turned into an Interrupted that says what is left."""
        try:
            if self.saved_step is None:  # a new run is resumable from the start: --resume needs latest.npz
                self._save("latest.npz")
            return self._loop()
        except KeyboardInterrupt:
            if not self.stops.aborted:
                raise
            if self.saved_step is None:  # three Ctrl-C during the first save: there is no run to keep
                raise Interrupted("aborted before the run had saved anything; nothing is kept", 130) from None
            raise Interrupted(f"aborted without saving at step {self.progress.step}; {self.out / 'latest.npz'} "
                              f"holds step {self.saved_step} (continue with: charlstm train --resume {self.out})",
                              130) from None

    def _loop(self):
        cfg, p = self.cfg, self.progress
        total, per_epoch = cfg.train.steps, self.batches.windows_per_epoch
        budget = config_mod.parse_duration(cfg.train.time_budget) if cfg.train.time_budget else None
        self.val_work = Workspace()
        session_start = time.monotonic()
        elapsed_before = p.elapsed
        interval = {"loss": 0.0, "norm": 0.0, "steps": 0, "chars": 0, "start": session_start}
        steps_this_session = 0
        self.bar = _progress_bar(total, p.step, self.quiet, self.stderr)
        self.say(f"training {self.spec.cell} H={self.spec.hidden} L={self.spec.layers} V={self.spec.vocab} "
                 f"on {len(self.corpus.train):,} characters ({per_epoch:,} windows of {cfg.data.batch}x"
                 f"{cfg.data.window} per epoch), {len(self.corpus.val):,} held out; run directory {self.out}")
        stopped_by = None
        try:
            while p.step < total:
                if self.stops.signal is not None:
                    stopped_by = "signal"
                    break
                if budget is not None and time.monotonic() - session_start >= budget:
                    stopped_by = "time"
                    break
                epoch, window = divmod(p.step, per_epoch)
                if self.batches.starts_sequence(window):
                    self.state = model.zero_state(self.spec, cfg.data.batch)
                batch = self.batches.window(epoch, window, p.step)
                lr = learning_rate(cfg.optim, p.step, epoch, total)
                loss, norm, self.state = train_step(self.engine, self.params, self.opt, batch, self.state, lr,
                                                    cfg.optim.clip, self._dropout(p.step))
                if not math.isfinite(loss):
                    self._diverged(f"the training loss became {loss}")
                if not math.isfinite(norm):
                    self._diverged(f"the gradient norm became {norm}")
                p.step += 1
                steps_this_session += 1
                p.elapsed = elapsed_before + time.monotonic() - session_start
                interval["loss"] += loss
                interval["norm"] += norm
                interval["steps"] += 1
                interval["chars"] += batch.targets()

                if p.step % cfg.train.log_every == 0 or p.step == total:
                    self._log_interval(interval, lr)
                elif self.bar is not None:
                    self.bar.update(p.step - self.bar.n)
                if p.step % cfg.train.eval_every == 0 or p.step == total:
                    self._validate()
                if self.cloze and (p.step % (cfg.train.cloze_every or cfg.train.eval_every) == 0 or p.step == total):
                    self._score_cloze()
                if p.step % cfg.train.save_every == 0:
                    self._save("latest.npz")
        finally:
            if self.bar is not None:
                self.bar.close()
                self.bar = None
        self.session_chars += interval["chars"]
        self.stops.phase = "saving"
        if steps_this_session:
            self._save("latest.npz")
        self.stops.phase = "validating"
        if steps_this_session and p.last_val_step != p.step:
            self._final_validation()
        self.stops.phase = "done"
        summary = self._summary(stopped_by, session_start, steps_this_session)
        if stopped_by == "signal":
            code = 130 if self.stops.signal == signal.SIGINT else 143
            name = "interrupted" if code == 130 else "terminated"
            raise Interrupted(f"{name} at step {p.step}; saved {self.out / 'latest.npz'} "
                              f"(continue with: charlstm train --resume {self.out})", code)
        return summary

    def _final_validation(self):
        """Validate where the run stopped (time budget or signal) between two scheduled validations. It
        counts for best.npz like any other; latest.npz, saved already, is written again to record it. A
        third Ctrl-C skips it: the steps are saved by then."""
        try:
            improved = self._validate(final=True, save_best=False)
            if improved is not None:
                self._save("latest.npz")
                if improved:
                    self._save("best.npz")
        except KeyboardInterrupt:
            if not self.stops.aborted:
                raise
            self.say("final validation skipped")

    def _log_interval(self, interval, lr):
        p = self.progress
        now = time.monotonic()
        speed = interval["chars"] / max(now - interval["start"], 1e-9)
        loss, norm = interval["loss"] / interval["steps"], interval["norm"] / interval["steps"]
        self.session_chars += interval["chars"]
        self._log({"step": p.step, "epoch": round(p.step / self.batches.windows_per_epoch, 4), "train_loss": loss,
                   "lr": lr, "grad_norm": norm, "chars_per_s": round(speed), "elapsed": round(p.elapsed, 2)})
        self.last_loss, self.last_speed = loss, speed
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=False)
            self.bar.update(p.step - self.bar.n)
        interval.update(loss=0.0, norm=0.0, steps=0, chars=0, start=now)

    def _dropout(self, step):
        """Dropout for this step, its masks drawn from a generator seeded by (seed, step): the saved step
        alone restores the mask stream on resume."""
        m = self.cfg.model
        if not (m.dropout or m.decoder_dropout):
            return None
        return model.Dropout(m.dropout, m.decoder_dropout, (self.cfg.train.seed, step, 7))

    def _diverged(self, what):
        saved = self.out / "latest.npz"
        keep = (f"the last good checkpoint is {saved}" if self.saved_step or self.resume
                else "no step had been saved, so nothing of the run is kept")
        raise TrainingError(f"{what} at step {self.progress.step + 1}; training stopped and {keep} "
                            f"(try a lower optim.lr or optim.clip)")

    def model_params(self):
        """The weights the run evaluates and saves: the moving average with optim.ema, else the weights."""
        return self.params if self.opt.average is None else self.opt.average

    def _validate(self, final=False, save_best=True):
        """Score the held-out text and keep the lowest loss as the best; save best.npz then, unless
        save_best is False. final marks the validation of a stop in metrics.jsonl. Returns whether the
        loss is the lowest so far, or None when there is nothing to score."""
        p = self.progress
        total, count = evaluate.score(self.model_params(), self.val_streams, self.cfg.data.window, self.val_work)
        if count == 0:
            return None
        val = total / count
        p.last_val, p.last_val_step = val, p.step
        improved = val < p.best_val
        if improved:
            p.best_val, p.best_step = val, p.step
        self._log({"step": p.step, "val_loss": val, "val_bpc": val / math.log(2), "elapsed": round(p.elapsed, 2),
                   **({"final": True} if final else {})})
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=True)
        else:
            self.say(f"step {p.step}/{self.cfg.train.steps}  val {val:.4f} nats/char ({val / math.log(2):.3f} bpc)"
                     + ("  best" if improved else ""))
        if improved and save_best:
            self._save("best.npz")
        return improved

    def _score_cloze(self):
        p = self.progress
        accuracy, n, _ = evaluate.cloze(self.model_params(), self.corpus.vocab, *self.cloze, unknown="skip")
        self.last_cloze = accuracy
        self._log({"step": p.step, "cloze_accuracy": accuracy, "cloze_n": n, "elapsed": round(p.elapsed, 2)})
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=True)
        else:
            self.say(f"step {p.step}/{self.cfg.train.steps}  cloze accuracy {accuracy:.3f} ({n} prompts)")

    def _save(self, name):
        path = self.out / name
        try:
            save(path, self.params, self.opt, self.state, self.cfg, self.corpus.vocab, self.progress,
                 self.corpus_info, self.batches.windows_per_epoch)
            if name == "latest.npz":
                self.saved_step = self.progress.step
            if self.progress.step > 0 and self.run_dir is not None:
                self.run_dir.keep()
        except checkpoint.CheckpointWriteError as e:
            previous = "the previous one is intact" if path.exists() else "there is no previous one"
            if self.cfg.train.on_save_error == "stop":
                raise TrainingError(f"{e}; {previous}; training stopped") from None
            self.say(f"warning: {e}; {previous}; training goes on (train.on_save_error=continue)")

    def _log(self, record):
        """Append to metrics.jsonl. Metrics matter less than the checkpoints: a failed write is a warning."""
        try:
            with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as e:
            if not self.metrics_failed:
                self.say(f"warning: cannot write {self.out / 'metrics.jsonl'}: {e.strerror}; training goes on")
            self.metrics_failed = True

    def _trim_metrics(self):
        """On resume, drop metric lines written after the checkpoint we continue from (atomically)."""
        path = self.out / "metrics.jsonl"
        if not path.exists() or not self.resume:
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= self.progress.step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        _write_text(path, "".join(line + "\n" for line in kept))

    def _postfix(self):
        p = self.progress
        val = f"{p.last_val:.3f}" if math.isfinite(p.last_val) else "-"
        bpc = f"{p.last_val / math.log(2):.3f}" if math.isfinite(p.last_val) else "-"
        cloze = "" if self.last_cloze is None else f" cloze {self.last_cloze:.3f}"
        return f"loss {self.last_loss:.3f} val {val} bpc {bpc}{cloze} {self.last_speed:,.0f} chars/s"

    def _summary(self, stopped_by, session_start, steps):
        p = self.progress
        seconds = time.monotonic() - session_start
        speed = self.session_chars / seconds if seconds > 0 else 0.0
        reason = {"time": "time budget reached", "signal": "stopped by signal"}.get(stopped_by, "done")
        epoch = p.step / self.batches.windows_per_epoch
        summary = {"steps": p.step, "epoch": epoch, "session_steps": steps, "session_seconds": seconds,
                   "chars_per_s": speed, "val_loss": p.last_val, "best_val": p.best_val, "best_step": p.best_step,
                   "run_dir": str(self.out), "reason": reason}
        best = (f"best {p.best_val:.4f} at step {p.best_step}" if p.best_step >= 0
                else f"no best.npz yet (it is kept from the validations every {self.cfg.train.eval_every} steps)")
        val = (f"val {p.last_val:.4f} nats/char ({p.last_val / math.log(2):.3f} bpc), {best}"
               if math.isfinite(p.last_val) else "no validation yet")
        self.say(f"{reason}: step {p.step} (epoch {epoch:.2f}), {steps} steps in {_hms(seconds)} at "
                 f"{speed:,.0f} chars/s; {val}; saved in {self.out}")
        return summary


def _or(value, default):
    return default if value is None else value


def _write_text(path, text):
    """Write a small text file atomically; a failure is a one-line error."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}{checkpoint.TMP_SUFFIX}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CharlstmError(f"cannot write {path}: {e.strerror}") from None


def _hms(seconds):
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def _progress_bar(total, initial, quiet, stream):
    if quiet or not (hasattr(stream, "isatty") and stream.isatty()):
        return None
    from tqdm import tqdm

    try:  # a terminal that reports no size (a bare pty) gets nothing from tqdm: give it one
        sized = os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError, AttributeError):
        sized = False
    shape = {"dynamic_ncols": True} if sized else {"ncols": 100, "nrows": 24}
    return tqdm(total=total, initial=initial, file=stream, unit="step", smoothing=0.1, **shape,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]")


class StopRequests:
    """SIGINT and SIGTERM while a run trains. The first asks the loop to stop after the current step, save
    latest.npz and validate. Ctrl-C reaches every process of the group and `timeout -s INT` sends two at
    once, so a second SIGINT never abandons anything: it says what a third will do. A third aborts what is
    under way by raising KeyboardInterrupt: the step or the save (latest.npz keeps the step it had, which
    --resume continues; the run saved one at its start) or the final validation. The handler writes its
    one message with os.write: a print could land inside another write to stderr, and fail there."""

    MESSAGES = {"training": "saving, press Ctrl-C again to abort without saving",
                "saving": "saving, press Ctrl-C again to abort without saving",
                "validating": "saved; validating for best.npz, press Ctrl-C again to skip it"}

    def __init__(self, stream, quiet):
        self.stream, self.quiet = stream, quiet
        self.signal = None  # the first signal, which stopped the run
        self.again = 0  # SIGINTs since then
        self.phase = "training"  # then saving, validating, done (when nothing is left to abort)
        self.aborted = False

    def handle(self, signum, frame):
        if self.signal is None:
            self.signal = signum
            return
        if signum != signal.SIGINT or self.aborted or self.phase == "done":
            return
        self.again += 1
        if self.again == 1:
            self._tell(self.MESSAGES[self.phase])
        else:
            self.aborted = True
            raise KeyboardInterrupt

    def _tell(self, text):
        if self.quiet:
            return
        try:
            fd = self.stream.fileno()
            os.write(fd, (("\n" if os.isatty(fd) else "") + text + "\n").encode())
        except (OSError, ValueError, AttributeError):  # no file descriptor (a test's captured stream)
            pass


class _signals:
    """Routes SIGINT and SIGTERM to a StopRequests while the loop runs, then restores the handlers."""

    def __init__(self, stops):
        self.stops = stops

    def __enter__(self):
        self.previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self.stops.handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self.previous.items():
            signal.signal(sig, old)


FROZEN_ON_RESUME = ("train.seed", "optim.name", "optim.momentum", "optim.centered", "optim.ema")


def resume_config(run_dir, overrides, say=None):
    """The config of the run in run_dir with overrides applied. The model, the data and what shapes the
    optimizer state or the random streams (FROZEN_ON_RESUME) cannot change; a time budget applies to one
    session, so it is dropped unless given again. A run already at its train.steps is an error that says
    how to extend it."""
    latest = checkpoint.load(pathlib.Path(run_dir) / "latest.npz")
    saved = latest.config
    cfg = copy.deepcopy(saved)
    cfg.train.time_budget = None
    config_mod.update(cfg, overrides, source="--set")
    changed = [f"{section}.{key}" for section in ("model", "data", "train", "optim")
               for key, value in dataclasses.asdict(getattr(cfg, section)).items()
               if value != dataclasses.asdict(getattr(saved, section))[key]]
    for key in changed:
        if key.split(".")[0] in ("model", "data") or key in FROZEN_ON_RESUME:
            raise ConfigError(f"{key} cannot change when resuming; the other train.* and optim.* keys can")
    if cfg.train.steps <= latest.step:
        raise ConfigError(_nothing_left(run_dir, latest.step, saved.train.steps,
                                        given="steps" in (overrides.get("train") or {}), steps=cfg.train.steps))
    if "train.steps" in changed and cfg.optim.schedule == "cosine" and say is not None:
        say(f"note: the cosine schedule now spans {cfg.train.steps} steps instead of {saved.train.steps}: "
            f"the learning rate changes from here on, unlike in a run started with {cfg.train.steps}")
    return cfg


def _nothing_left(run_dir, step, planned, given, steps):
    """The message for a resume with no step left to train."""
    where = (f"is already at step {step:,}, so --steps {steps:,} leaves nothing to train" if given
             else f"has finished: it is at step {step:,} of {planned:,}")
    more = planned if planned > step else 2 * max(step, 1)
    return (f"{run_dir} {where}; to train it further give a larger total, e.g. "
            f"charlstm train --resume {run_dir} --steps {more}")


def prepare(corpus, config_path=None, out=None, resume=None, flags=None, overrides=(), val=None, force=False,
            quiet=False):
    """A Trainer from command-line arguments. config_path: a preset name or a YAML file. flags:
    {"section.key": value or None}, applied before the --set overrides. With no corpus and no resume: the
    rooms demo (data/rooms-train.txt, the rooms preset). The Trainer's `origins` say where each key's
    value came from (default, preset, file, flag, --set), for --dry-run."""
    from . import presets

    flag_map = {}
    for key, value in (flags or {}).items():
        if value is not None:
            section, name = key.split(".")
            flag_map.setdefault(section, {})[name] = value
    set_map = config_mod.parse_overrides(overrides)
    mapping = {section: {**flag_map.get(section, {}), **set_map.get(section, {})}  # --set last
               for section in {*flag_map, *set_map}}
    say = None if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    if resume:
        cfg = resume_config(resume, mapping, say)
        trainer = Trainer(cfg, corpus, resume, val_source=val, resume=True, quiet=quiet)
        saved = config_mod.to_dict(cfg)
        saved["train"].pop("time_budget")  # one session's: not the run's
        trainer.origins = config_mod.origins([(f"the run ({resume})", saved), ("flag", flag_map),
                                              ("--set", set_map)])
        return trainer
    run_name, demo = None, {}
    if not corpus:
        from . import assets

        corpus, config_path, run_name = (str(assets.CORPUS),), config_path or "rooms", "rooms"
        demo = {"train": {"cloze": str(assets.CLOZE)}}
        if say:
            say(f"no corpus given: training on the rooms stories ({assets.CORPUS.name}) with "
                f"{pathlib.Path(config_path).stem}")
    layers = []
    if config_path is not None:
        path, label = presets.locate(config_path)
        layers.append((label, config_mod.read_file(path)))
    layers += [("rooms demo", demo), ("flag", flag_map), ("--set", set_map)]
    cfg = config_mod.Config()
    for label, layer in layers:
        config_mod.update(cfg, layer, source=label, check=False)
    config_mod.validate(cfg)
    if cfg.train.cloze:
        cfg.train.cloze = os.path.abspath(cfg.train.cloze)  # a resumed run may start elsewhere
    trainer = Trainer(cfg, corpus, out or default_run_dir(corpus, name=run_name), val_source=val, quiet=quiet,
                      force=force)
    trainer.origins = config_mod.origins(layers)
    return trainer

"""The training loop: truncated BPTT over a corpus, validation, checkpoints, resume, clean stops.

A run lives in one directory:
    config.yaml     the effective configuration, with a comment on every key
    metrics.jsonl   one JSON object per log interval and per validation
    latest.npz      the whole training state, every train.save_every steps and at the end
    best.npz        the same, at the lowest validation loss so far
    .lock           held (flock) while a process trains here; released by the kernel if it dies
With optim.ema the model in both checkpoints is the moving average of the weights, which is also what
validation and the cloze scores measure; the weights the optimizer steps are saved as optimizer state.

Determinism: the same config and seed give the same run bit for bit, and a run stopped at any step and
resumed reaches the same weights as one that never stopped. Every random draw comes from a generator
seeded by train.seed and the position in the run (epoch offsets and line order by (seed, epoch), dropout
masks by (seed, step)), so the step saved in latest.npz, with the weights, optimizer moments and carried
state, is all a resumed run needs.
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
from .cells import CELLS
from .data import load_corpus, make_batches, split_streams
from .errors import CharlstmError, CheckpointError, ConfigError, TrainingError
from .optim import Optimizer, clip_by_global_norm, learning_rate
from .parallel import DataParallel, auto_workers
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
        "elapsed": progress.elapsed,
        "corpus": corpus_info,
    }
    checkpoint.write(path, arrays, meta)


# ------------------------------------------------------------------------------------------- training


def train_step(params, optimizer, x, y, state, lr, clip, work, mask=None, dropout=None, parallel=None):
    """One optimizer step on one window: forward, backward, global-norm clipping, update.

    dropout: (p between layers, p before the decoder, seed of the mask generator), or None.
    parallel: a parallel.DataParallel whose workers share the batch (then params are its shared arrays).
    Returns (loss, gradient norm before clipping, state to carry into the next window). When the loss or
    the norm is not finite, nothing is updated and the incoming state is returned, for the caller to stop.
    """
    if parallel is not None:
        loss, next_state, grads = parallel.forward_backward(x, y, state, mask, dropout)
        if not math.isfinite(loss):
            return loss, math.nan, state
    else:
        drop = None if dropout is None else model.Dropout(dropout[0], dropout[1], np.random.default_rng(dropout[2]))
        loss, next_state, cache = model.forward(params, x, y, state, work, mask, drop)
        if not math.isfinite(loss):
            return loss, math.nan, state
        grads = model.backward(params, cache, work)
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
        self.stop_signal = None
        self.bar = None
        self.last_loss, self.last_speed, self.last_cloze = math.nan, 0.0, None
        self.session_chars = 0  # characters trained on this session (targets that count, not padding)
        self.metrics_failed = False
        self.parallel = None  # a parallel.DataParallel when the batch is shared among processes

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
                                         last_val=_or(m.get("last_val"), math.nan))
            except (KeyError, TypeError, ValueError) as e:
                raise CheckpointError(f"{ckpt.path} lacks the training state needed to resume ({e})") from None
        self.val_streams = self._val_streams()
        self.cloze = evaluate.read_cloze(cfg.train.cloze) if cfg.train.cloze else None
        workers = cfg.train.workers or auto_workers(self.spec, cfg.data.batch)
        if workers > 1:
            if workers > cfg.data.batch:
                raise ConfigError(f"train.workers {workers} is more than data.batch {cfg.data.batch}")
            self.parallel = DataParallel(self.spec, cfg.data.batch, cfg.data.window, workers)
            for k, v in self.params.items():
                np.copyto(self.parallel.params[k], v)
            self.params = self.parallel.params  # the optimizer updates the arrays the workers read

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
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CharlstmError(f"cannot create run directory {self.out}: {e.strerror}") from None
        with RunLock(self.out):
            remove_stale_temporaries(self.out)
            if not self.resume and (self.out / "latest.npz").exists():
                if not self.force:
                    raise CharlstmError(f"{self.out} already holds a run; resume it with --resume {self.out}, "
                                        f"or choose another --out (--force starts over and overwrites it)")
                for name in ("latest.npz", "best.npz", "metrics.jsonl"):  # nothing of the old run may linger
                    (self.out / name).unlink(missing_ok=True)
            try:
                self._setup()
                _write_text(self.out / "config.yaml", config_mod.dump(self.cfg))
                self._trim_metrics()
                with _signals(self):
                    return self._loop()
            finally:
                if self.parallel is not None:
                    self.parallel.close()

    def _loop(self):
        cfg, p = self.cfg, self.progress
        total, per_epoch = cfg.train.steps, self.batches.windows_per_epoch
        budget = config_mod.parse_duration(cfg.train.time_budget) if cfg.train.time_budget else None
        work, self.val_work = Workspace(), Workspace()
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
                if self.stop_signal is not None:
                    stopped_by = "signal"
                    break
                if budget is not None and time.monotonic() - session_start >= budget:
                    stopped_by = "time"
                    break
                epoch, window = divmod(p.step, per_epoch)
                if self.batches.starts_sequence(window):
                    self.state = model.zero_state(self.spec, cfg.data.batch)
                x, y, mask = self.batches.window(epoch, window, p.step)
                lr = learning_rate(cfg.optim, p.step, epoch, total)
                loss, norm, self.state = train_step(self.params, self.opt, x, y, self.state, lr, cfg.optim.clip,
                                                    work, mask, self._dropout(p.step), self.parallel)
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
                interval["chars"] += y.size if mask is None else int(mask.sum())

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
        if steps_this_session or not (self.out / "latest.npz").exists():
            self._save("latest.npz")
        if stopped_by == "time" and steps_this_session:
            # reported, not used for best.npz: a run stopped here and resumed must keep the same best.npz
            # as one that never stopped
            self._validate(final=True)
        summary = self._summary(stopped_by, session_start, steps_this_session)
        if stopped_by == "signal":
            code = 130 if self.stop_signal == signal.SIGINT else 143
            name = "interrupted" if code == 130 else "terminated"
            raise Interrupted(f"{name} at step {p.step}; saved {self.out / 'latest.npz'} "
                              f"(continue with: charlstm train --resume {self.out})", code)
        return summary

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
        return m.dropout, m.decoder_dropout, [self.cfg.train.seed, step, 7]

    def _diverged(self, what):
        saved = self.out / "latest.npz"
        keep = f"the last good checkpoint is {saved}" if saved.exists() else "no checkpoint had been saved yet"
        raise TrainingError(f"{what} at step {self.progress.step + 1}; training stopped and {keep} "
                            f"(try a lower optim.lr or optim.clip)")

    def model_params(self):
        """The weights the run evaluates and saves: the moving average with optim.ema, else the weights."""
        return self.params if self.opt.average is None else self.opt.average

    def _validate(self, final=False):
        """Score the held-out text; on schedule (not final), keep best.npz at the lowest loss."""
        p = self.progress
        total, count = evaluate.score(self.model_params(), self.val_streams, self.cfg.data.window, self.val_work)
        if count == 0:
            return
        val = total / count
        p.last_val = val
        improved = val < p.best_val and not final
        if improved:
            p.best_val, p.best_step = val, p.step
        self._log({"step": p.step, "val_loss": val, "val_bpc": val / math.log(2), "elapsed": round(p.elapsed, 2),
                   **({"final": True} if final else {})})
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=True)
        else:
            self.say(f"step {p.step}/{self.cfg.train.steps}  val {val:.4f} nats/char ({val / math.log(2):.3f} bpc)"
                     + ("  best" if improved else ""))
        if improved:
            self._save("best.npz")

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


class _signals:
    """SIGINT and SIGTERM ask the loop to stop after the current step; a second SIGINT aborts at once
    (checkpoint writes are atomic, so that too loses nothing already saved)."""

    def __init__(self, trainer):
        self.trainer = trainer

    def __enter__(self):
        self.previous = {}

        def handler(signum, frame):
            if self.trainer.stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.trainer.stop_signal = signum

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, handler)
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
    session, so it is dropped unless given again."""
    saved = checkpoint.load(pathlib.Path(run_dir) / "latest.npz").config
    cfg = copy.deepcopy(saved)
    cfg.train.time_budget = None
    config_mod.update(cfg, overrides, source="--set")
    changed = [f"{section}.{key}" for section in ("model", "data", "train", "optim")
               for key, value in dataclasses.asdict(getattr(cfg, section)).items()
               if value != dataclasses.asdict(getattr(saved, section))[key]]
    for key in changed:
        if key.split(".")[0] in ("model", "data") or key in FROZEN_ON_RESUME:
            raise ConfigError(f"{key} cannot change when resuming; the other train.* and optim.* keys can")
    if "train.steps" in changed and cfg.optim.schedule == "cosine" and say is not None:
        say(f"note: the cosine schedule now spans {cfg.train.steps} steps instead of {saved.train.steps}: "
            f"the learning rate changes from here on, unlike in a run started with {cfg.train.steps}")
    return cfg


def prepare(corpus, config_path=None, out=None, resume=None, flags=None, overrides=(), val=None, force=False,
            quiet=False):
    """A Trainer from command-line arguments. flags: {"section.key": value or None}, applied before the
    --set overrides. With no corpus and no resume: the rooms demo (data/rooms-train.txt, rooms.yaml)."""
    mapping = {}
    for key, value in (flags or {}).items():
        if value is not None:
            section, name = key.split(".")
            mapping.setdefault(section, {})[name] = value
    for section, values in config_mod.parse_overrides(overrides).items():
        mapping.setdefault(section, {}).update(values)
    say = None if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    if resume:
        cfg = resume_config(resume, mapping, say)
        return Trainer(cfg, corpus, resume, val_source=val, resume=True, quiet=quiet)
    run_name = None
    if not corpus:
        from . import assets

        corpus, config_path, run_name = (str(assets.CORPUS),), config_path or str(assets.CONFIG), "rooms"
        mapping.setdefault("train", {}).setdefault("cloze", str(assets.CLOZE))
        if say:
            say(f"no corpus given: training on the rooms stories ({assets.CORPUS.name}) with "
                f"{pathlib.Path(config_path).name}")
    cfg = config_mod.load(config_path)
    config_mod.update(cfg, mapping, source="the command line")
    if cfg.train.cloze:
        cfg.train.cloze = os.path.abspath(cfg.train.cloze)  # a resumed run may start elsewhere
    return Trainer(cfg, corpus, out or default_run_dir(corpus, name=run_name), val_source=val, quiet=quiet,
                   force=force)

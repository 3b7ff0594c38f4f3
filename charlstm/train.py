"""The training loop: truncated BPTT over a corpus, with validation, checkpoints, resume and clean stops.

A session reads and checks its inputs (corpus, settings, on resume the checkpoint), then creates and
locks the run directory (rundir.py) and trains. A run that stops (end of steps, time budget, signal)
saves latest.npz, then validates there if it has not just done so; that validation counts for best.npz
like the scheduled ones, and both checkpoints record the validation loss of their weights, so that
`-c RUN_DIR` can hand out the better of the two (checkpoint.choose).

Determinism: the same config and seed give the same run bit for bit, and a run stopped at any step and
resumed reaches the same weights as one that never stopped. Every random draw comes from a generator
seeded by train.seed and the position in the run (epoch offsets and line order by (seed, epoch), dropout
masks by (seed, step)), so the saved state (trainstate.py) is all a resumed run needs. Validation draws
nothing random and changes only the record of the best, so a resumed run may call another step best
(the stop's validation) while its weights match.
"""

import dataclasses
import math
import pathlib
import sys
import time
from dataclasses import dataclass
from typing import Optional

from . import autosize, checkpoint, evaluate, finetune, heldout, model
from . import config as config_mod
from . import engine as engine_mod
from .data import Corpus, load_corpus, make_batches
from .dropout import dropout_at
from .errors import ConfigError, DataError, Interrupted, TrainingError
from .optim import learning_rate
from .report import Reporter
from .rundir import Follower, Metrics, RunDirectory, check_free, write_text
from .stops import Routed, StopRequests
from .trainstate import RunInfo, TrainState, check_same_corpus, corpus_record, recorded_sources
from .trainstep import train_step


@dataclass
class Inputs:
    """What a session reads, and checks, before the run directory is made."""

    corpus: Corpus
    val_source: Optional[str]  # the --val file, or None: the end of the corpus is held out
    batches: object  # data.StreamBatches or data.LineBatches
    val_streams: list  # held-out id arrays, each scored from the zero state
    cloze: Optional[tuple]  # (prompts, answers) scored during training, or None
    info: RunInfo


def read_inputs(cfg, sources, val_source, say, resumed=None, known=()):
    """Read the corpus and the validation and cloze texts for cfg; notes go to say. resumed: the
    checkpoint.Checkpoint a resumed run continues from, whose text the corpus must be. known: characters
    the vocabulary holds besides the text's (a fine-tuned run's, finetune.py)."""
    corpus = load_corpus(sources, cfg.data, val_source, say, known)
    record = corpus_record(corpus, val_source)
    if resumed is not None:
        check_same_corpus(resumed, corpus.vocab, record)
    batches = make_batches(corpus.train, corpus.vocab, cfg.data, cfg.train.seed)
    if batches.cut:
        say(f"note: {batches.cut} lines are longer than data.window - 1 = {cfg.data.window - 1} "
            f"characters; each is trained in pieces, every piece from the zero state")
    emphasis = batches.emphasis
    if emphasis is not None:
        share = emphasis.count / max(len(corpus.train), 1)
        say(f"note: data.loss_pattern marks {emphasis.count:,} characters of the training text ({share:.1%}); "
            f"they weigh {emphasis.weight:g} in the training loss" + ("" if emphasis.count else
                                                                     ": the pattern matches nothing"))
    val_streams = heldout.validation_streams(corpus, cfg)
    if not sum(len(s) - 1 for s in val_streams if len(s) >= 2):
        chars = len(corpus.val)
        if val_source is not None:  # an error, as `charlstm eval` makes it
            raise DataError(f"the validation text {val_source} has {chars} character{'s' * (chars != 1)}: "
                            f"too short to score (it needs at least two)")
        if cfg.data.val_fraction > 0:
            say(f"note: the held-out text ({chars} characters) is too short to validate on: no validation "
                f"and no best.npz (give --val FILE, more text, or a larger data.val_fraction)")
    d = cfg.data
    if d.mode == "lines" and d.curriculum_steps > (0 if resumed is None else resumed.step):
        last = cfg.train.steps - 1  # the share of the lines drawn grows linearly to 1 at curriculum_steps
        share = d.curriculum_start + (1 - d.curriculum_start) * last / d.curriculum_steps
        reach = ("all of them" if d.curriculum_steps <= last else
                 "all of them at this run's last step" if share > 0.995 else
                 f"the shortest {share:.0%} at this run's last step")
        say(f"note: curriculum until step {d.curriculum_steps:,}: training draws the shortest "
            f"{d.curriculum_start:.0%} of the lines first, widening to {reach}, so the training "
            f"loss starts well below the validation loss; that is expected, not overfitting")
    scored = sum(max(len(s) - 1, 0) for s in val_streams)
    sampled = heldout.describe(cfg, len(corpus.val), scored)
    if sampled:
        say(sampled)
    elif scored > LARGE_VALIDATION:
        say(f"note: every validation scores all {scored:,} held-out characters; train.val_max_chars sets fewer")
    cloze = evaluate.read_cloze(cfg.train.cloze) if cfg.train.cloze else None
    info = RunInfo(cfg, corpus.vocab, record, batches.windows_per_epoch)
    corpus.release()  # the pages of a mapped corpus that reading and indexing it touched
    return Inputs(corpus, val_source, batches, val_streams, cloze, info)


def rebatched(inputs, cfg):
    """inputs for a cfg whose data.batch or data.val_streams changed since they were read."""
    corpus, info = inputs.corpus, inputs.info
    batches = make_batches(corpus.train, corpus.vocab, cfg.data, cfg.train.seed)
    info = dataclasses.replace(info, config=cfg, windows_per_epoch=batches.windows_per_epoch)
    return dataclasses.replace(inputs, batches=batches, val_streams=heldout.validation_streams(corpus, cfg), info=info)


RISES_TO_WARN = 3  # validations in a row each with a higher loss than the one before: said, once a streak
LARGE_VALIDATION = 10_000_000  # held-out characters worth a note: a validation this long takes minutes
LONG_VALIDATION = 10.0  # seconds: a validation expected to take longer is announced with its duration


def _minutes(seconds):
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} minutes"


class Trainer:
    """One training session: `run` trains, `dry_run` reports what a run would do."""

    def __init__(self, cfg, sources, out_dir, val_source=None, resume=False, quiet=False, force=False,
                 stderr=None, origins=None):
        self.cfg, self.out, self.resume, self.force = cfg, pathlib.Path(out_dir), resume, force
        self.sources, self.val_source = list(sources), val_source
        self.origins = origins  # {"section.key": where its value came from}, for --dry-run
        self.main = engine_mod.is_main_process()  # under torchrun, rank 0 alone writes and reports
        quiet = quiet or not self.main
        self.report = Reporter(quiet, stderr or sys.stderr)
        self.stops = StopRequests(self.report.stream, quiet)
        self.metrics = Metrics(self.out / "metrics.jsonl" if self.main else None, self.report.say)
        self.spec = None  # the model.Spec, once the vocabulary is known
        self.inputs = None  # the Inputs, once read
        self.ts = None  # the TrainState, new or restored
        self.engine = None  # what computes the steps (engine.py), while a session runs
        self.saved_step = None  # the step latest.npz holds, once known
        self.run_dir = None  # the RunDirectory (a Follower on torchrun's other ranks), while run() holds it
        self.rises = 0  # validations in a row whose loss rose: overfitting, once there are RISES_TO_WARN

    def _setup(self):
        cfg = self.cfg
        try:
            engine_mod.check(cfg.train)  # before a long read of the corpus
        except ConfigError as e:
            if not (self.resume and cfg.train.engine == "torch"):
                raise
            raise ConfigError(f"{e}; or continue the run with NumPy: charlstm train --resume {self.out} "
                              f"--engine numpy") from None
        ckpt = checkpoint.load(self.out / "latest.npz") if self.resume else None
        source = None  # the checkpoint a new fine-tuned run starts from
        if ckpt is None and cfg.model.init_from:
            source = finetune.load_source(cfg.model.init_from)
            for line in finetune.adopt_shape(cfg, source, self.origins):
                self.report.say(line)
        sources, val_source = self.sources, self.val_source
        if ckpt is not None:
            sources, val_source = recorded_sources(ckpt, sources, val_source)
        # a fine-tuned run's vocabulary holds its checkpoint's characters, resumed or not
        known = source.vocab.chars if source else ckpt.vocab.chars if ckpt and cfg.model.init_from else ()
        self.inputs = read_inputs(cfg, sources, val_source, self.report.say, ckpt, known)
        origin = finetune.origin(source) if source else ckpt.meta.get("init_from") if ckpt else None
        if origin:  # what the checkpoints record of the model this run started from
            self.inputs = dataclasses.replace(self.inputs, info=dataclasses.replace(self.inputs.info, origin=origin))
        if ckpt is None and autosize.wanted(cfg, self.origins):
            self._size_automatically()
        self.spec = model.Spec.of(cfg.model, len(self.inputs.corpus.vocab), cfg.data.window)
        if source is not None:
            self.report.say(finetune.note(source, self.inputs.corpus.vocab))
        if ckpt is None:
            self.ts = TrainState.new(cfg, self.spec, self.inputs.corpus.vocab, source)
        else:
            self.ts = TrainState.restore(ckpt, cfg)
            self.saved_step = self.ts.progress.step
        self.engine = engine_mod.start(self.spec, cfg, self.report.say)
        self.engine.adopt(self.ts)

    def _size_automatically(self):
        """model.size auto: choose the model and schedule for the time budget (autosize.py), say what was
        chosen, and batch the inputs for it."""
        cfg = self.cfg
        budget = config_mod.parse_duration(cfg.train.time_budget)
        choice = autosize.choose(cfg, self.origins or {}, self.inputs, budget)
        for line in choice.lines():
            self.report.say(line)
        if self.origins is not None:
            self.origins.update({key: "model.size auto" for key in choice.keys})
            self.origins["model.size"] = "model.size auto chose the shape above; fixed from here"
        self.inputs = rebatched(self.inputs, cfg)

    def run(self):
        """Train: read and check the inputs, then create and lock the run directory and go. Returns the
        summary dict; raises Interrupted after a stop on a signal (the run saved, or aborted on a third
        Ctrl-C) and CharlstmError for everything a user can fix."""
        if not self.resume and self.main:
            check_free(self.out, self.force)  # early: before a long read of the corpus
        try:
            self._setup()
            run_dir = RunDirectory(self.out, fresh=not self.resume, force=self.force) if self.main else Follower()
            with run_dir as self.run_dir:
                if self.main:
                    write_text(self.out / "config.yaml", config_mod.dump(self.cfg))
                if self.resume:
                    self.metrics.trim(self.ts.progress.step)
                with Routed(self.stops):  # also while the workers close: a Ctrl-C there is no abort
                    try:
                        return self._train()
                    finally:
                        self._close_engine()
        finally:
            self._close_engine()
            self.run_dir = None

    def dry_run(self):
        """Read and check everything a run would, build the model, time a few steps, and return the
        lines of the --dry-run report; nothing is written."""
        from . import dryrun

        if engine_mod.distributed():  # its few timed steps would be collective, their number each process's
            raise ConfigError("--dry-run runs in one process: leave torchrun out")
        try:
            self._setup()
            return dryrun.report(self)
        finally:
            self._close_engine()

    def _close_engine(self):
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
            raise Interrupted(f"aborted without saving at step {self.ts.progress.step}; {self.out / 'latest.npz'} "
                              f"holds step {self.saved_step} (continue with: charlstm train --resume {self.out})",
                              130) from None

    def _loop(self):
        cfg, p, ts, batches = self.cfg, self.ts.progress, self.ts, self.inputs.batches
        total, per_epoch = cfg.train.steps, batches.windows_per_epoch
        budget = config_mod.parse_duration(cfg.train.time_budget) if cfg.train.time_budget else None
        self.report.begin(self.spec, self.inputs, p, total, self.out, self.engine.described)
        self._announce_validation()
        start, elapsed_before, steps, stopped_by = time.monotonic(), p.elapsed, 0, None
        try:
            while p.step < total:
                wanted = ("signal" if self.stops.signal is not None
                          else "time" if budget is not None and time.monotonic() - start >= budget else None)
                stopped_by = self.engine.agree(wanted)  # under torchrun, a stop anywhere stops every process
                if stopped_by is not None:
                    break
                epoch, n = divmod(p.step, per_epoch)
                if batches.starts_sequence(n):
                    ts.state = model.zero_state(self.spec, cfg.data.batch)
                window = batches.window(epoch, n, p.step)
                lr = learning_rate(cfg.optim, p.step, epoch, total)
                loss, norm = train_step(self.engine, ts, window, lr, cfg.optim.clip, dropout_at(cfg, p.step))
                if not math.isfinite(loss):
                    self._diverged(f"the training loss became {loss}")
                if not math.isfinite(norm):
                    self._diverged(f"the gradient norm became {norm}")
                p.step += 1
                steps += 1
                p.elapsed = elapsed_before + time.monotonic() - start
                self.report.stepped(loss, norm, window.targets())
                if p.step % cfg.train.log_every == 0 or p.step == total:
                    self.metrics.append(self.report.log_interval(p.step, p.step / per_epoch, lr, p.elapsed))
                self.report.advance(p.step)
                if p.step % cfg.train.eval_every == 0 or p.step == total:
                    self._validate()
                if self.inputs.cloze and (p.step % (cfg.train.cloze_every or cfg.train.eval_every) == 0
                                          or p.step == total):
                    self._score_cloze()
                if p.step % cfg.train.save_every == 0:
                    self._save("latest.npz")
                    self.inputs.corpus.release()  # a mapped corpus: pages read since, back to the page cache
        finally:
            self.report.end()
        self.stops.phase = "saving"
        if steps:
            self._save("latest.npz")
        self.stops.phase = "validating"
        if steps and p.last_val_step != p.step:
            self._final_validation()
        self.stops.phase = "done"
        summary = self.report.summary(p, stopped_by, p.step / per_epoch, steps, self.out, cfg.train.eval_every)
        if stopped_by == "signal":
            code = self.stops.exit_code()
            raise Interrupted(f"{'interrupted' if code == 130 else 'terminated'} at step {p.step}; saved "
                              f"{self.out / 'latest.npz'} (continue with: charlstm train --resume {self.out})", code)
        return summary

    def _diverged(self, what):
        saved = self.out / "latest.npz"
        keep = (f"the last good checkpoint is {saved}" if self.saved_step or self.resume
                else "no step had been saved, so nothing of the run is kept")
        raise TrainingError(f"{what} at step {self.ts.progress.step + 1}; training stopped and {keep} "
                            f"(try a lower optim.lr or optim.clip)")

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
            self.report.say("final validation skipped")

    def _validate(self, final=False, save_best=True):
        """Score the held-out text and keep the lowest loss as the best; save best.npz then, unless
        save_best is False. final marks the validation of a stop in metrics.jsonl. Returns whether the
        loss is the lowest so far, or None when there is nothing to score."""
        p = self.ts.progress
        began = time.monotonic()
        total, count = self.engine.score(self.ts, self.inputs.val_streams, self.cfg.data.window)
        self.inputs.corpus.release()
        seconds = time.monotonic() - began
        self.report.set_aside(seconds)
        if count == 0:
            return None
        before = p.last_val  # NaN before the first validation
        improved = p.validated(total / count)
        self.metrics.append({**self.report.validated(p, self.cfg.train.steps, final), "val_seconds": round(seconds, 2)})
        self.rises = self.rises + 1 if p.last_val > before else 0
        if self.rises == RISES_TO_WARN:
            self.report.say(f"warning: the validation loss has risen {RISES_TO_WARN} validations in a row, to "
                            f"{p.last_val:.4f} at step {p.step:,}: the model is learning the training text by "
                            f"heart (overfitting); best.npz holds step {p.best_step:,}, validation loss "
                            f"{p.best_val:.4f} (a smaller model, more dropout or more text would do better)")
        if improved and save_best:
            self._save("best.npz")
        return improved

    def _announce_validation(self):
        """Before the first validation of a long held-out text (more than the default sample), say about
        how long each will take, timed on its first windows: a validation that takes minutes should not
        look like a stalled run."""
        streams = self.inputs.val_streams
        if sum(len(s) for s in streams) <= heldout.SAMPLE_CHARS or self.ts.progress.step >= self.cfg.train.steps:
            return
        seconds = heldout.seconds_to_score(self.engine, self.ts, streams, self.cfg.data.window)
        if seconds >= LONG_VALIDATION:
            scored = sum(max(len(s) - 1, 0) for s in streams)
            self.report.say(f"note: each validation scores {scored:,} characters and will take about "
                            f"{_minutes(seconds)} (every {self.cfg.train.eval_every:,} steps and at the end; "
                            f"not counted in chars/s; train.val_max_chars sets fewer)")

    def _score_cloze(self):
        self.engine.pull(self.ts)
        if not self.main:  # its figure is rank 0's to report
            return
        began = time.monotonic()
        accuracy, n, fills = evaluate.cloze(self.ts.model_params(), self.inputs.corpus.vocab, *self.inputs.cloze,
                                            unknown="skip", spec=self.spec)
        self.report.set_aside(time.monotonic() - began)
        first = sum(f[:1] == a[:1] for f, a in zip(fills, self.inputs.cloze[1])) / n
        self.metrics.append(self.report.cloze_scored(self.ts.progress, self.cfg.train.steps, accuracy, n, first))

    def _save(self, name):
        self.engine.pull(self.ts)
        saved = self.run_dir.save(name, self.ts, self.inputs.info, self.cfg.train.on_save_error, self.report.say)
        if saved and name == "latest.npz":
            self.saved_step = self.ts.progress.step

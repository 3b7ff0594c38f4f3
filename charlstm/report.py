"""What a training session tells the person at the terminal, on stderr: notes and warnings, a progress bar
(step, ETA, training loss, last validation loss and bits per character, characters per second), a line
per validation when there is no bar, and the closing summary. The same figures go to metrics.jsonl: this
module makes its records, rundir.Metrics writes them.
"""

import math
import os
import time


class Reporter:
    """Messages, the progress bar and the running figures of one session; quiet: errors only."""

    def __init__(self, quiet, stream):
        self.quiet, self.stream = quiet, stream
        self.bar = None  # a tqdm bar on a terminal while the loop runs
        self.loss, self.speed, self.val, self.cloze = math.nan, 0.0, math.nan, None  # shown on the bar
        self.started = time.monotonic()  # of the session, reset by begin()
        self.chars = 0  # characters trained on this session (targets that count, not padding)
        self.aside = 0.0  # seconds of this session spent validating and scoring cloze, not training
        self.interval = Interval(self.started)

    def say(self, text):
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            print(text, file=self.stream, flush=True)

    def begin(self, spec, inputs, progress, total, run_dir, engine=None):
        """The loop starts at progress.step of total: open the bar, say what trains on what (train.Inputs)
        and, when it is not NumPy in this process, on which engine (its description)."""
        self.started = time.monotonic()
        self.aside = 0.0
        self.interval = Interval(self.started)
        self.val = progress.last_val
        self.bar = progress_bar(total, progress.step, self.quiet, self.stream)
        corpus, d = inputs.corpus, inputs.info.config.data
        self.say(f"training {spec.cell} H={spec.hidden} L={spec.layers} V={spec.vocab} on {len(corpus.train):,} "
                 f"characters ({inputs.batches.windows_per_epoch:,} windows of {d.batch}x{d.window} per epoch), "
                 f"{len(corpus.val):,} held out; run directory {run_dir}" + (f"; {engine}" if engine else "")
                 + (f"; resuming at step {progress.step:,} of {total:,}" if progress.step else ""))

    def end(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def stepped(self, loss, norm, chars):
        """A step is done: its figures go into the interval's means."""
        self.interval.add(loss, norm, chars)
        self.chars += chars

    def set_aside(self, seconds):
        """seconds spent validating or scoring cloze: left out of the training speeds (the interval's and
        the summary's), which would otherwise fall with every validation, by more the larger the held-out
        text."""
        self.aside += seconds
        self.interval.aside += seconds

    def log_interval(self, step, epoch, lr, elapsed):
        """The metrics.jsonl record of the steps since the last one (means, speed), also shown on the bar
        when it next moves."""
        loss, norm, speed = self.interval.close(time.monotonic())
        self.loss, self.speed = loss, speed
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=False)
        return {"step": step, "epoch": round(epoch, 4), "train_loss": loss, "lr": lr, "grad_norm": norm,
                "chars_per_s": round(speed), "elapsed": round(elapsed, 2)}

    def advance(self, step):
        """Move the bar to step."""
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def validated(self, progress, total, final=False):
        """The validation just recorded in progress: on the bar, or a line; returns its metrics record
        (final: the validation where a run stopped)."""
        p, val = progress, progress.last_val
        self.val = val
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=True)
        else:
            self.say(f"step {p.step}/{total}  val {val:.4f} nats/char ({val / math.log(2):.3f} bpc)"
                     + ("  best" if p.best_step == p.step else ""))
        return {"step": p.step, "val_loss": val, "val_bpc": val / math.log(2), "elapsed": round(p.elapsed, 2),
                **({"final": True} if final else {})}

    def cloze_scored(self, progress, total, accuracy, n, first=None):
        """Cloze accuracy at this step: on the bar, or a line; returns its metrics record. first: the share
        of answers whose first character was right (which name was chosen, before its spelling)."""
        self.cloze = accuracy
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix(), refresh=True)
        else:
            self.say(f"step {progress.step}/{total}  cloze accuracy {accuracy:.3f} ({n} prompts)")
        record = {"step": progress.step, "cloze_accuracy": accuracy, "cloze_n": n}
        if first is not None:
            record["cloze_first"] = first
        return {**record, "elapsed": round(progress.elapsed, 2)}

    def _postfix(self):
        """The bar's figures: before the first validation, "val pending" (dashes read as a fault)."""
        val = f"val {self.val:.3f} bpc {self.val / math.log(2):.3f}" if math.isfinite(self.val) else "val pending"
        cloze = "" if self.cloze is None else f" cloze {self.cloze:.3f}"
        return f"loss {self.loss:.3f} {val}{cloze} {self.speed:,.0f} chars/s"

    def summary(self, progress, stopped_by, epoch, steps, run_dir, eval_every):
        """Say how the session ended, and return it as a dict: where the run is, how fast it went, the best."""
        p = progress
        seconds = time.monotonic() - self.started
        training = seconds - self.aside  # validation and cloze time left out of the speed
        speed = self.chars / training if training > 0 else 0.0
        reason = {"time": "time budget reached", "signal": "stopped by signal"}.get(stopped_by, "done")
        summary = {"steps": p.step, "epoch": epoch, "session_steps": steps, "session_seconds": seconds,
                   "chars_per_s": speed, "validation_seconds": self.aside, "val_loss": p.last_val, "best_val": p.best_val, "best_step": p.best_step,
                   "run_dir": str(run_dir), "reason": reason}
        best = (f"best {p.best_val:.4f} at step {p.best_step}" if p.best_step >= 0
                else f"no best.npz yet (it is kept from the validations every {eval_every} steps)")
        val = (f"val {p.last_val:.4f} nats/char ({p.last_val / math.log(2):.3f} bpc), {best}"
               if math.isfinite(p.last_val) else "no validation yet")
        aside = f" ({hms(self.aside)} of it validating)" if self.aside >= 0.5 else ""
        self.say(f"{reason}: step {p.step} (epoch {epoch:.2f}), {steps} steps in {hms(seconds)}{aside} at "
                 f"{speed:,.0f} chars/s; {val}" + ("" if stopped_by == "signal" else f"; saved in {run_dir}"))
        # stopped by a signal, the line that follows says where it saved and how to go on
        return summary


class Interval:
    """Running sums over the steps between two metrics.jsonl lines, and the seconds among them set aside
    (validation, cloze), which the speed leaves out."""

    def __init__(self, start):
        self.start, self.loss, self.norm, self.steps, self.chars = start, 0.0, 0.0, 0, 0
        self.aside = 0.0

    def add(self, loss, norm, chars):
        self.loss += loss
        self.norm += norm
        self.steps += 1
        self.chars += chars

    def close(self, now):
        """(mean loss, mean gradient norm, characters per second); the sums start again from now."""
        figures = (self.loss / self.steps, self.norm / self.steps,
                   self.chars / max(now - self.start - self.aside, 1e-9))
        self.start, self.loss, self.norm, self.steps, self.chars, self.aside = now, 0.0, 0.0, 0, 0, 0.0
        return figures


def hms(seconds):
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def progress_bar(total, initial, quiet, stream):
    """A tqdm bar on stream if it is a terminal (and not quiet), else None."""
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

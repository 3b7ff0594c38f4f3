"""The run directory: where a training run keeps its files, and how they are written.

    config.yaml     the effective configuration, with a comment on every key
    metrics.jsonl   one JSON object per log interval and per validation
    latest.npz      the whole training state: at the start, every train.save_every steps and at the end
    best.npz        the same, at the lowest validation loss so far
    .lock           held (flock) while a process trains here; released by the kernel if it dies

Nothing is created before the corpus and the settings have been read and checked, and a new run that
fails before saving a step removes what it wrote. Every file but metrics.jsonl (appended to) is replaced
atomically (checkpoint.atomic_write).
"""

import json
import os
import pathlib

from . import checkpoint
from .errors import CharlstmError, Interrupted, TrainingError

try:
    import fcntl
except ImportError:  # not on Windows: runs there are simply not locked
    fcntl = None


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
    be good, and locked while the session lasts. A new run (fresh) may not start over another run unless
    forced, which then deletes it. A new run that fails before it has saved a step (or the lock cannot be
    had) removes the files it wrote and the directories it created, so a failed start leaves no runs/NAME
    holding only .lock; a checkpoint past step 0 (`save`) makes the run worth keeping."""

    FILES = ("latest.npz", "best.npz", "metrics.jsonl", "config.yaml", ".lock")

    def __init__(self, path, fresh, force=False):
        self.path, self.fresh, self.force, self.kept = pathlib.Path(path), fresh, force, not fresh
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
            if self.fresh:
                check_free(self.path, self.force)  # again, now that we hold the lock
        except BaseException:
            self.lock.__exit__()
            self._remove_what_was_written()
            raise
        remove_stale_temporaries(self.path)
        if self.fresh and self.force:
            self._forget_old_run()
        return self

    def save(self, name, state, info, on_error, warn):
        """Write a checkpoint of a trainstate.TrainState as RUN_DIR/name; once a run has saved a step past
        0 it is worth keeping. A write the disk refuses stops training (TrainingError), or with on_error
        "continue" is a warning through warn. Returns whether the checkpoint was written."""
        path = self.path / name
        try:
            state.save(path, info)
        except checkpoint.CheckpointWriteError as e:
            previous = "the previous one is intact" if path.exists() else "there is no previous one"
            if on_error == "stop":
                raise TrainingError(f"{e}; {previous}; training stopped") from None
            warn(f"warning: {e}; {previous}; training goes on (train.on_save_error=continue)")
            return False
        if state.progress.step > 0:
            self.kept = True
        return True

    def _forget_old_run(self):
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


class Follower:
    """The run directory as torchrun's processes other than rank 0 see it: rank 0 creates, locks and
    writes it, and they write nothing (a save just reports success, so that they go on in step)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def save(self, name, state, info, on_error, warn):
        return True


def remove_stale_temporaries(directory):
    """Temporary files left by a process that died while writing (we hold the lock, so none of them can
    be in use)."""
    for p in pathlib.Path(directory).glob(f".*{checkpoint.TMP_SUFFIX}"):
        try:
            p.unlink()
        except OSError:
            pass


def holds_run(path):
    """Whether path is a run directory: a latest.npz or best.npz in it."""
    path = pathlib.Path(path)
    return (path / "latest.npz").is_file() or (path / "best.npz").is_file()


def default_run_dir(sources, root="runs", name=None):
    """runs/<name>, by default the first corpus file's name, numbered -2, -3 ... if that holds a run."""
    first = sources[0] if sources else "stdin"
    name = name or ("stdin" if first == "-" else pathlib.Path(first).stem or "run")
    base = pathlib.Path(root) / name
    candidate, n = base, 1
    while holds_run(candidate):
        n += 1
        candidate = base.with_name(f"{name}-{n}")
    return candidate


def check_free(directory, force):
    """A new run may not start over a run unless forced (--force)."""
    path = pathlib.Path(directory)
    if (path / "latest.npz").exists() and not force:
        raise CharlstmError(f"{path} already holds a run; resume it with --resume {path}, "
                            f"or choose another --out (--force starts over and overwrites it)")


def write_text(path, text):
    """Write a small text file atomically; a failure is a one-line error."""
    try:
        checkpoint.atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
    except OSError as e:
        raise CharlstmError(f"cannot write {path}: {e.strerror}") from None


class Metrics:
    """RUN_DIR/metrics.jsonl, one JSON object a line. Metrics matter less than the checkpoints: a failed
    append is a warning, given once through warn, and training goes on. With path None (torchrun's
    processes but rank 0) nothing is written."""

    def __init__(self, path, warn):
        self.path, self.warn = None if path is None else pathlib.Path(path), warn
        self.failed = False

    def append(self, record):
        if self.path is None:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")
        except OSError as e:
            if not self.failed:
                self.warn(f"warning: cannot write {self.path}: {e.strerror}; training goes on")
            self.failed = True

    def trim(self, step):
        """Drop the lines written after `step` (by a session that went on past the checkpoint a resumed
        run continues from), and any line that cannot be read; atomically."""
        if self.path is None or not self.path.exists():
            return
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        write_text(self.path, "".join(line + "\n" for line in kept))

"""Checkpoints: self-describing .npz files, written atomically, read without pickle and verified.

Layout (every entry a plain array; `numpy.load(path, allow_pickle=False)` reads it):
    lstm.weight_ih_l0 ... decoder.bias      the model, named as a PyTorch state_dict
    optim.<slot>.<param>                    optimizer state, e.g. optim.exp_avg.decoder.bias; with optim.ema the
                                            model entries hold the moving average and optim.weights.<param>
                                            the weights the optimizer steps
    state.h, state.c                        the carried recurrent state, (L, B, H)
    meta                                    UTF-8 JSON bytes: format and version, vocabulary, config, step
                                            (which fixes the data position and every random stream),
                                            validation figures, corpus fingerprint
    sha256                                  hex digest over every other entry's name, dtype, shape and bytes

Writing goes to a temporary file in the same directory, which is flushed, fsynced and renamed over the
final name, so a crash at any moment leaves either the old checkpoint or the new one, never a mixture.
"""

import hashlib
import json
import os
import pathlib
import zipfile

import numpy as np

from . import config as config_mod
from .vocab import Vocab
from .errors import CharlstmError, CheckpointError, ConfigError, DataError
from .cells import CELLS
from .model import Spec, param_shapes

FORMAT = "charlstm-checkpoint"
VERSION = 1
MAX_META_BYTES = 16 << 20  # a vocabulary of every Unicode character would still fit
TMP_SUFFIX = ".tmp"


class CheckpointWriteError(CheckpointError):
    """The file system refused a checkpoint; the previous file under that name is untouched."""


def digest(arrays):
    """SHA-256 over the entries' names, dtypes, shapes and C-order bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode("utf-8") + b"\0" + a.dtype.str.encode() + b"\0" + repr(a.shape).encode() + b"\0")
        h.update(a.data if a.size else b"")
    return h.hexdigest()


def tmp_name(path):
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def write(path, arrays, meta):
    """Write arrays and meta to path atomically. Raises CheckpointWriteError if the disk refuses."""
    path = pathlib.Path(path)
    entries = dict(arrays)
    entries["meta"] = np.frombuffer(json.dumps(meta, ensure_ascii=False, sort_keys=True).encode("utf-8"), np.uint8)
    entries["sha256"] = np.frombuffer(digest(entries).encode("ascii"), np.uint8)
    try:
        atomic_write(path, lambda fh: np.savez(fh, **entries))
    except OSError as e:
        raise CheckpointWriteError(f"could not write {path}: {e.strerror or e}") from None


def atomic_write(path, fill):
    """Write a file so that a crash at any moment leaves the old one or the new one, never a mixture:
    fill(fh) writes a temporary file in the same directory (binary), which is flushed, fsynced and renamed
    over path. On any failure the temporary file is removed and the exception goes on (an OSError when
    the disk refuses). Checkpoints and the run directory's text files are all written this way."""
    path = pathlib.Path(path)
    tmp = tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        _remove_quietly(tmp)
        raise


def _fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def read(path):
    """-> (arrays without meta and sha256, meta dict), verified against the recorded digest."""
    path = pathlib.Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    _check_kind(path)
    _check_declared_sizes(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{path} is a single array, not a charlstm checkpoint")
        with archive:
            entries = {name: archive[name] for name in archive.files}
    except CharlstmError:
        raise
    except (zipfile.BadZipFile, EOFError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated ({_reason(e)})") from None
    except ValueError as e:
        if "pickle" in str(e):
            raise CheckpointError(f"{path} holds pickled objects, which charlstm never loads") from None
        raise CheckpointError(f"{path} is not a readable checkpoint ({_reason(e)})") from None
    except MemoryError:
        raise CheckpointError(f"{path} declares arrays too large to load") from None
    except Exception as e:  # zlib.error, OSError, struct.error...: any damage is the same to the user
        raise CheckpointError(f"{path} is corrupt or unreadable ({_reason(e)})") from None

    if "meta" not in entries or "sha256" not in entries:
        raise CheckpointError(f"{path} is not a charlstm checkpoint (no meta or sha256 entry)")
    recorded = entries.pop("sha256")
    if recorded.dtype != np.uint8 or recorded.ndim != 1:
        raise CheckpointError(f"{path}: its sha256 entry is malformed")
    if recorded.tobytes() != digest(entries).encode("ascii"):
        raise CheckpointError(f"{path} is corrupt: its contents do not match the SHA-256 recorded in it")
    meta_bytes = entries.pop("meta")
    if meta_bytes.dtype != np.uint8 or meta_bytes.ndim != 1:
        raise CheckpointError(f"{path}: meta must be a 1-D array of UTF-8 bytes")
    if meta_bytes.size > MAX_META_BYTES:
        raise CheckpointError(f"{path}: meta is {meta_bytes.size} bytes, more than the {MAX_META_BYTES} allowed")
    try:
        meta = json.loads(meta_bytes.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: meta is not UTF-8 JSON ({_reason(e)})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a charlstm checkpoint (meta names no format {FORMAT!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {meta.get('version')!r}; "
                              f"this charlstm reads version {VERSION}")
    return entries, meta


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first member, or an empty zip
NPY_MAGIC = b"\x93NUMPY"


def _check_kind(path):
    """A file that is neither a zip (.npz) nor a .npy is not a checkpoint: say so, instead of letting
    np.load take it for a pickle. A text file (notes.txt, README.md) is named as such."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except IsADirectoryError:
        raise CheckpointError(f"{path} is a directory, not a checkpoint") from None
    except OSError as e:
        raise CheckpointError(f"cannot read {path}: {e.strerror}") from None
    if head.startswith(ZIP_MAGIC) or head.startswith(NPY_MAGIC):
        return
    if not head:
        raise CheckpointError(f"{path} is empty, not a checkpoint")
    try:
        head.decode("utf-8")
        text = True
    except UnicodeDecodeError as e:
        text = e.start >= len(head) - 3  # only a character cut at byte 512
    kind = "it looks like text, not an .npz zip archive" if text else "not an .npz zip archive"
    raise CheckpointError(f"{path} is not a checkpoint ({kind}); give a .npz written by charlstm train, "
                          f"or its run directory")


def _check_declared_sizes(path):
    """Before numpy allocates anything: every member's header must declare no more bytes than the member
    holds, and no member may inflate more than 64-fold (a zip bomb). A damaged archive is left for
    np.load to report."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.compress_type != zipfile.ZIP_STORED and info.file_size > 64 * max(info.compress_size, 1024):
                    raise CheckpointError(f"{path}: {info.filename} would inflate {info.file_size} bytes from "
                                          f"{info.compress_size}; refused")
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read_header is None:
                        continue
                    shape, _, dtype = read_header(member, max_header_size=10000)
                declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if dtype.hasobject:
                    raise CheckpointError(f"{path} holds pickled objects, which charlstm never loads")
                if declared > info.file_size:
                    raise CheckpointError(f"{path}: {info.filename} declares {declared} bytes but holds "
                                          f"{info.file_size}; corrupt or hostile")
    except CheckpointError:
        raise
    except Exception:  # not a zip, a damaged header...: np.load gives the precise complaint
        return


def _reason(e):
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


class Checkpoint:
    """A verified checkpoint: params, vocab, config and the rest of the training state."""

    def __init__(self, path, entries, meta):
        self.path = pathlib.Path(path)
        self.meta = meta
        vocab = meta.get("vocab")
        if vocab is None:
            raise CheckpointError(f"{path}: meta holds no vocabulary")
        if not isinstance(vocab, list) or not all(isinstance(c, str) for c in vocab):
            raise CheckpointError(f"{path}: bad vocabulary: it must be a list of characters")
        try:
            self.vocab = Vocab(vocab)
        except DataError as e:
            raise CheckpointError(f"{path}: bad vocabulary: {e}") from None
        try:
            self.config = config_mod.from_dict(meta["config"])
        except KeyError:
            raise CheckpointError(f"{path}: meta holds no config") from None
        except ConfigError as e:
            raise CheckpointError(f"{path}: bad config: {e}") from None
        m = self.config.model
        self.spec = Spec.of(m, len(self.vocab), self.config.data.window)
        shapes = param_shapes(self.spec)
        self.params = {}
        for name, shape in shapes.items():
            a = entries.get(name)
            if a is None:
                raise CheckpointError(f"{path}: missing array {name}")
            if a.shape != shape:
                raise CheckpointError(f"{path}: {name} has shape {a.shape}, expected {shape} for this config")
            if a.dtype not in (np.float32, np.float64):
                raise CheckpointError(f"{path}: {name} has dtype {a.dtype}, expected float32 or float64")
            if not np.all(np.isfinite(a)):
                raise CheckpointError(f"{path}: {name} holds NaN or infinite values")
            self.params[name] = a
        self.optim = {k[len("optim."):]: a for k, a in entries.items() if k.startswith("optim.")}
        names = [f"state.{n}" for n in CELLS[m.cell].STATE]
        self.state = tuple(entries[n] for n in names) if all(n in entries for n in names) else None
        unknown = set(entries) - set(shapes) - {k for k in entries if k.startswith(("optim.", "state."))}
        if unknown:
            raise CheckpointError(f"{path}: unexpected arrays {', '.join(sorted(unknown)[:5])}")

    @property
    def step(self):
        return int(self.meta.get("step", 0))


def load(path):
    """Read and verify a checkpoint file, or the one of a run directory's that `choose` picks."""
    path, _ = choose(path)
    entries, meta = read(path)
    return Checkpoint(path, entries, meta)


def resolve(path):
    return choose(path)[0]


def choose(path):
    """(checkpoint file, why) for what -c names: a file as it is (why None); for a run directory, the one
    of best.npz and latest.npz whose weights scored the lower validation loss, as their meta records it,
    and a sentence saying which and why (None when both hold the same step). best.npz holds the lowest
    loss of the validations it saw, but latest.npz can be better: a run trained by a charlstm whose stops
    did not validate for best.npz, for one. Without a recorded loss, best.npz is preferred, since it was
    validated; a file whose meta cannot be read loses to one that can (load reports its damage)."""
    path = pathlib.Path(path)
    if not path.is_dir():
        return path, None
    best, latest = path / "best.npz", path / "latest.npz"
    if not best.exists() and not latest.exists():
        raise CheckpointError(f"run directory {path} holds no best.npz or latest.npz")
    if not best.exists():
        return latest, f"using {latest} ({_described(latest)}): the run has no best.npz"
    if not latest.exists():
        return best, f"using {best} ({_described(best)}): the run has no latest.npz"
    b, l = _recorded(best), _recorded(latest)
    if isinstance(b, str) or isinstance(l, str):  # unreadable: the other one, if readable
        bad, good = (best, latest) if isinstance(b, str) else (latest, best)
        if isinstance(b, str) and isinstance(l, str):
            return best, None  # load says what is wrong with it
        return good, f"using {good} ({_described(good)}): {bad.name} is unreadable ({b if bad is best else l})"
    (b_step, b_val), (l_step, l_val) = b, l
    if l_step == b_step:  # the same weights: nothing to choose, nothing to say
        return best, None
    if l_val is not None and (b_val is None or l_val < b_val):
        return latest, (f"using {latest} ({_described(latest)}): its validation loss is lower than best.npz's"
                        + (f" ({b_val:.4f} at step {b_step:,})" if b_val is not None else " (none recorded)"))
    other = f"{l_val:.4f}" if l_val is not None else "no validation at its step"
    return best, (f"using {best} ({_described(best)}): the lowest validation loss; "
                  f"latest.npz (step {l_step:,}) has {other}")


def _recorded(path):
    """(step, validation loss of these weights or None) from a checkpoint's meta alone, without reading or
    verifying its arrays; a string saying why when the meta cannot be read."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("meta.npy")
            if info.file_size > MAX_META_BYTES + 4096:
                return "meta too large"
            with archive.open(info) as member:
                raw = np.lib.format.read_array(member, allow_pickle=False)
        meta = json.loads(raw.tobytes().decode("utf-8"))
        step = int(meta.get("step", 0))
        if "val_loss" in meta:
            val = meta["val_loss"]
        else:  # written before checkpoints recorded val_loss: best.npz's best_val is its own
            val = meta.get("best_val") if meta.get("best_step") == step else None
        return step, (float(val) if isinstance(val, (int, float)) and np.isfinite(val) else None)
    except Exception as e:  # any damage: the choice goes to the other file
        return _reason(e)


def _described(path):
    recorded = _recorded(path)
    if isinstance(recorded, str):
        return "unreadable meta"
    step, val = recorded
    return f"step {step:,}" + (f", validation loss {val:.4f}" if val is not None else "")

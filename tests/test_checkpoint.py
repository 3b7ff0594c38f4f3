"""Checkpoint files: atomic writes, pickle-free verified reads, named errors for every kind of damage."""

import io
import pathlib
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charlstm import checkpoint, config, model
from charlstm.errors import CheckpointError


def valid_entries(cell="lstm", V=6, H=4, L=2):
    spec = model.Spec(cell, V, H, L)
    params = model.init_params(spec, np.random.default_rng(0))
    cfg = config.Config()
    cfg.model.cell, cfg.model.hidden, cfg.model.layers = cell, H, L
    meta = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "vocab": list("\nabcde"),
            "config": config.to_dict(cfg), "step": 3}
    return params, meta


@pytest.fixture
def ckpt_path(tmp_path):
    params, meta = valid_entries()
    path = tmp_path / "c.npz"
    checkpoint.write(path, params, meta)
    return path


def one_line_error(path):
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_round_trip(ckpt_path):
    params, meta = valid_entries()
    ck = checkpoint.load(ckpt_path)
    assert ck.vocab.chars == list("\nabcde") and ck.step == 3 and ck.spec == model.Spec("lstm", 6, 4, 2)
    for name, a in params.items():
        np.testing.assert_array_equal(ck.params[name], a)
        assert ck.params[name].dtype == np.float32


def test_fortran_ordered_arrays_round_trip(tmp_path):
    params, meta = valid_entries()
    params["decoder.weight"] = np.asfortranarray(params["decoder.weight"])
    checkpoint.write(tmp_path / "f.npz", params, meta)
    np.testing.assert_array_equal(checkpoint.load(tmp_path / "f.npz").params["decoder.weight"],
                                  params["decoder.weight"])


def test_failed_write_leaves_the_previous_file_and_no_temporary(ckpt_path, monkeypatch):
    before = ckpt_path.read_bytes()
    params, meta = valid_entries()
    real = np.savez

    def half_then_fail(fh, **arrays):
        real(fh, **{k: arrays[k] for k in list(arrays)[:3]})
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", half_then_fail)
    with pytest.raises(checkpoint.CheckpointWriteError, match="No space left on device"):
        checkpoint.write(ckpt_path, params, dict(meta, step=4))
    assert ckpt_path.read_bytes() == before
    assert sorted(p.name for p in ckpt_path.parent.iterdir()) == ["c.npz"]


def test_interrupted_write_leaves_the_previous_file(ckpt_path, monkeypatch):
    before = ckpt_path.read_bytes()

    def interrupted(fh, **arrays):
        fh.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.write(ckpt_path, *valid_entries())
    assert ckpt_path.read_bytes() == before
    assert sorted(p.name for p in ckpt_path.parent.iterdir()) == ["c.npz"]


def test_a_write_the_file_system_refuses_is_a_named_error(tmp_path):
    """A directory that cannot be written: its parent is a regular file, which not even root can write
    into (a read-only directory skipped as root, and CI runs as root)."""
    blocker = tmp_path / "run"
    blocker.write_text("a file, not a directory")
    with pytest.raises(checkpoint.CheckpointWriteError) as info:
        checkpoint.write(blocker / "x.npz", *valid_entries())
    assert str(info.value) == f"could not write {blocker / 'x.npz'}: Not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


@pytest.mark.parametrize("keep", [0, 10, 100, 1000, -200, -22, -1])
def test_truncated_files_are_reported(ckpt_path, keep):
    data = ckpt_path.read_bytes()
    ckpt_path.write_bytes(data[:keep] if keep >= 0 else data[:len(data) + keep])
    one_line_error(ckpt_path)


def test_a_flipped_bit_is_reported_as_corruption(ckpt_path):
    data = bytearray(ckpt_path.read_bytes())
    with np.load(ckpt_path) as z:
        weight = z["decoder.weight"].tobytes()
    offset = bytes(data).index(weight)  # uncompressed: the array bytes sit in the file as they are
    data[offset + 5] ^= 0x10
    ckpt_path.write_bytes(bytes(data))
    assert "corrupt" in one_line_error(ckpt_path)


def test_contents_changed_consistently_still_fail_the_digest(tmp_path):
    params, meta = valid_entries()
    path = tmp_path / "c.npz"
    checkpoint.write(path, params, meta)
    with np.load(path) as z:
        entries = {k: z[k] for k in z.files}
    entries["decoder.bias"] = entries["decoder.bias"] + 1  # a rewritten, self-consistent zip
    np.savez(path, **entries)
    assert "do not match the SHA-256" in one_line_error(path)


def test_pickled_object_arrays_are_refused_without_being_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (pathlib.Path.touch, (marker,))

    np.savez(path, meta=np.array([Evil()], dtype=object))
    assert "pickled" in one_line_error(path)
    assert not marker.exists()
    np.save(tmp_path / "evil.npy", np.array([Evil()], dtype=object))
    (tmp_path / "evil.npy").rename(tmp_path / "evil2.npz")
    one_line_error(tmp_path / "evil2.npz")
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"hello", b"PK\x03\x04" + bytes(100), b"\x93NUMPY" + bytes(50)])
def test_foreign_bytes_are_reported(tmp_path, content):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    one_line_error(path)


def test_other_npz_files_are_not_checkpoints(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros(3))
    assert "not a charlstm checkpoint" in one_line_error(tmp_path / "a.npz")
    np.save(tmp_path / "b.npy", np.zeros(3))
    assert "single array" in one_line_error(tmp_path / "b.npy")


def rewrite(tmp_path, change_params=None, change_meta=None):
    params, meta = valid_entries()
    if change_params:
        change_params(params)
    if change_meta:
        change_meta(meta)
    path = tmp_path / "c.npz"
    checkpoint.write(path, params, meta)
    return path


@pytest.mark.parametrize("change_params, change_meta, message", [
    (lambda p: p.__setitem__("decoder.bias", np.zeros(7, np.float32)), None, "decoder.bias has shape (7,)"),
    (lambda p: p.pop("lstm.weight_hh_l1"), None, "missing array lstm.weight_hh_l1"),
    (lambda p: p.__setitem__("decoder.bias", np.zeros(6, np.int64)), None, "dtype int64"),
    (lambda p: p["decoder.weight"].__setitem__((0, 0), np.nan), None, "decoder.weight holds NaN"),
    (lambda p: p.__setitem__("extra", np.zeros(1)), None, "unexpected arrays extra"),
    (None, lambda m: m.__setitem__("vocab", list("\nabcdd")), "bad vocabulary"),
    (None, lambda m: m.__setitem__("vocab", ["\n", "ab", "c", "d", "e", "f"]), "bad vocabulary"),
    (None, lambda m: m.__setitem__("vocab", "abcdef"), "bad vocabulary"),
    (None, lambda m: m.pop("vocab"), "no vocabulary"),
    (None, lambda m: m["config"]["model"].__setitem__("hidden", 5), "shape"),
    (None, lambda m: m["config"]["model"].__setitem__("colour", 5), "bad config: unknown config key model.colour"),
    (None, lambda m: m.__setitem__("version", 99), "format version 99"),
    (None, lambda m: m.__setitem__("format", "other"), "not a charlstm checkpoint"),
])
def test_inconsistent_contents_are_named_errors(tmp_path, change_params, change_meta, message):
    assert message in one_line_error(rewrite(tmp_path, change_params, change_meta))


def test_oversized_meta_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint, "MAX_META_BYTES", 100)
    assert "more than the 100 allowed" in one_line_error(rewrite(tmp_path))


def test_meta_must_be_json_bytes(tmp_path):
    params, meta = valid_entries()
    path = tmp_path / "c.npz"
    entries = dict(params, meta=np.frombuffer(b"\xff{not json", np.uint8))
    entries["sha256"] = np.frombuffer(checkpoint.digest(entries).encode(), np.uint8)
    np.savez(path, **entries)
    assert "meta is not UTF-8 JSON" in one_line_error(path)
    entries = dict(params, meta=np.arange(4.0))
    entries["sha256"] = np.frombuffer(checkpoint.digest(entries).encode(), np.uint8)
    np.savez(path, **entries)
    assert "1-D array of UTF-8 bytes" in one_line_error(path)


def test_resolve_prefers_best_then_latest(tmp_path):
    params, meta = valid_entries()
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(CheckpointError, match="holds no best.npz or latest.npz"):
        checkpoint.load(run)
    checkpoint.write(run / "latest.npz", params, dict(meta, step=9))
    assert checkpoint.load(run).step == 9
    checkpoint.write(run / "best.npz", params, dict(meta, step=5))
    assert checkpoint.load(run).step == 5
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        checkpoint.load(tmp_path / "nothing.npz")


def _with_array_bytes_changed(blob, member, changes):
    """The checkpoint `blob` with bytes of one member's array data (after its .npy header) XORed, and the
    zip written again with valid CRCs and sizes: damage that zip's own checks cannot see."""
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        members = [(info.filename, z.read(info)) for info in z.infolist()]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members:
            if name == member:
                f = io.BytesIO(data)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}[np.lib.format.read_magic(f)]
                read_header(f)
                start, data = f.tell(), bytearray(data)
                positions = {start + offset % (len(data) - start): xor for offset, xor in reversed(changes)}
                for position, xor in positions.items():  # one change per byte: two would cancel
                    data[position] ^= xor
            z.writestr(name, bytes(data))
    return out.getvalue()


@pytest.fixture(scope="module")
def valid_blob(tmp_path_factory):
    path = tmp_path_factory.mktemp("blob") / "c.npz"
    checkpoint.write(path, *valid_entries())
    with zipfile.ZipFile(path) as z:
        return path.read_bytes(), [info.filename for info in z.infolist()]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_array_bytes_changed_under_valid_crcs_fail_the_digest(valid_blob, tmp_path, data):
    """Any change to any entry's bytes (parameters, meta, the digest itself), in a zip whose CRCs are
    right, is caught by the SHA-256 and by nothing before it."""
    blob, members = valid_blob
    member = data.draw(st.sampled_from(members))
    changes = data.draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=4,
                                 unique_by=lambda c: c[0]))
    path = tmp_path / "damaged.npz"
    path.write_bytes(_with_array_bytes_changed(blob, member, changes))
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None  # zip's CRCs find nothing wrong
    assert "do not match the SHA-256 recorded in it" in one_line_error(path)


@pytest.mark.parametrize("content, kind", [(b"buy milk\n", "it looks like text, not an .npz zip archive"),
                                           ("aé".encode() * 300, "it looks like text, not an .npz zip archive"),
                                           (bytes(range(256)), "not an .npz zip archive")])
def test_a_file_that_is_not_a_zip_is_not_a_checkpoint(tmp_path, content, kind):
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    message = one_line_error(path)
    assert message.startswith(f"{path} is not a checkpoint ({kind}); give a .npz") and "pickle" not in message
    path.write_bytes(b"")
    assert one_line_error(path) == f"{path} is empty, not a checkpoint"

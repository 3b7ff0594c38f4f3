"""charlstm.encoded: a large corpus encoded once into a memory-mapped ids file, the same corpus as one read
into memory, reused while the text is unchanged."""

import os
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from charlstm import checkpoint, data, encoded, reading
from charlstm.config import DataConfig
from charlstm.errors import DataError
from charlstm.trainstate import corpus_record
from conftest import CONFIGS, make_text


@pytest.fixture
def mapped(monkeypatch):
    """Every corpus mapped, however small, read 7 bytes at a time (chunks that cut multibyte characters)."""
    monkeypatch.setattr(encoded, "MAP_FROM", 1)
    monkeypatch.setattr(encoded, "READ", 7)


def in_memory(monkeypatch, *args):
    with monkeypatch.context() as m:
        m.setattr(encoded, "MAP_FROM", 1 << 60)
        return data.load_corpus(*args)


def assert_same_corpus(a, b, val_source=None):
    assert a.vocab.chars == b.vocab.chars and a.files == b.files
    for x, y in ((a.train, b.train), (a.val, b.val)):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    assert corpus_record(a, val_source) == corpus_record(b, val_source)


def hidden(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_a_mapped_corpus_is_the_corpus_read_into_memory(tmp_path, mapped, monkeypatch):
    (tmp_path / "notes" / "b").mkdir(parents=True)
    (tmp_path / "notes" / "a.txt").write_text("h\u00e9llo\r\nw\u00f6rld \U0001f600\n" * 30, encoding="utf-8")
    (tmp_path / "notes" / "b" / "c.txt").write_text(make_text(200), encoding="utf-8")
    notes = str(tmp_path / "notes")
    got = data.load_corpus([notes], DataConfig())
    assert isinstance(got.train.base, np.ndarray) and not got.train.flags.writeable  # a view of the mapping
    assert_same_corpus(got, in_memory(monkeypatch, [notes], DataConfig()))
    # a --val text with characters the corpus lacks widens the vocabulary: the ids are written again for it
    val = tmp_path / "val.txt"
    val.write_text("ZZ \u4e2d quick\n", encoding="utf-8")
    got = data.load_corpus([notes], DataConfig(), str(val))
    assert "\u4e2d" in got.vocab.chars
    assert_same_corpus(got, in_memory(monkeypatch, [notes], DataConfig(), str(val)), str(val))
    # the ids files are hidden, so that the directory corpus never reads them as text
    assert reading.expand_sources([notes]) == [os.path.join(notes, "a.txt"), os.path.join(notes, "b", "c.txt")]
    assert [n.split(".")[-1] for n in hidden(tmp_path / "notes")] == ["ids", "json"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(min_size=1, max_size=60), read=st.integers(1, 9),
       encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]), errors=st.sampled_from(["strict", "replace"]))
def test_any_bytes_decode_in_chunks_as_in_one_piece(tmp_path_factory, monkeypatch, raw, read, encoding, errors):
    """Decoding a chunk at a time gives the text, or the error message, of decoding the whole file."""
    path = tmp_path_factory.mktemp("bytes") / "t.txt"
    path.write_bytes(raw)
    config = DataConfig(encoding=encoding, errors=errors)
    outcomes = []
    for map_from in (1, 1 << 60):
        monkeypatch.setattr(encoded, "MAP_FROM", map_from)
        monkeypatch.setattr(encoded, "READ", read)
        try:
            c = data.load_corpus([str(path)], config)
            outcomes.append((c.vocab.chars, c.train.tolist(), c.val.tolist()))
        except DataError as e:
            outcomes.append(str(e))
    assert outcomes[0] == outcomes[1]


def test_the_ids_are_reused_while_the_text_is_unchanged(tmp_path, mapped):
    corpus = tmp_path / "book.txt"
    corpus.write_text(make_text(300), encoding="utf-8")
    notes = []
    first = data.load_corpus([str(corpus)], DataConfig(), say=notes.append)
    assert len(notes) == 1 and "encoding" in notes[0] and str(tmp_path) in notes[0]
    ids = next(tmp_path.glob(".book.txt.*.ids"))
    built = ids.stat().st_mtime_ns
    again = data.load_corpus([str(corpus)], DataConfig(), say=notes.append)
    assert len(notes) == 1 and ids.stat().st_mtime_ns == built  # mapped as it was: no second note, no write
    np.testing.assert_array_equal(first.train, again.train)
    with open(corpus, "a", encoding="utf-8") as fh:  # another size: encoded again
        fh.write("Qx\n")
    changed = data.load_corpus([str(corpus)], DataConfig(), say=notes.append)
    assert len(notes) == 2 and "Q" in changed.vocab.chars
    os.utime(corpus, ns=(0, 0))  # the same size, another time: encoded again
    data.load_corpus([str(corpus)], DataConfig(), say=notes.append)
    assert len(notes) == 3
    other = data.load_corpus([str(corpus)], DataConfig(errors="replace"), say=notes.append)  # other settings
    assert len(notes) == 4 and other.vocab.chars == changed.vocab.chars
    assert len(list(tmp_path.glob(".book.txt.*.ids"))) == 2


def test_an_unwritable_directory_sends_the_ids_to_the_cache_directory(tmp_path, mapped, monkeypatch):
    """As root every directory can be written, so the refusal is simulated: opening a file in it fails."""
    text_dir, cache = tmp_path / "readonly", tmp_path / "cache"
    text_dir.mkdir()
    corpus = text_dir / "book.txt"
    corpus.write_text(make_text(100), encoding="utf-8")
    real_open = open

    def refusing(path, mode="r", *args, **kwargs):
        if os.path.dirname(os.path.abspath(path)) == str(text_dir) and mode != "rb":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(encoded, "open", refusing, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    notes = []
    got = data.load_corpus([str(corpus)], DataConfig(), say=notes.append)
    assert hidden(text_dir) == []
    assert f"{cache / 'charlstm'}" in notes[0] and f"({text_dir} cannot be written)" in notes[0]
    assert len(list((cache / "charlstm").glob("book.txt.*.ids"))) == 1
    np.testing.assert_array_equal(got.train, in_memory(monkeypatch, [str(corpus)], DataConfig()).train)


def test_a_bad_byte_is_named_as_in_memory_and_leaves_nothing_beside_the_file(tmp_path, mapped, monkeypatch):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"line one\nline two\n\xe2\x82 and more")
    with pytest.raises(DataError) as got:
        data.load_corpus([str(bad)], DataConfig())
    with pytest.raises(DataError) as expected:
        in_memory(monkeypatch, [str(bad)], DataConfig())
    assert str(got.value) == str(expected.value)
    assert "byte offset 18 (line 3)" in str(got.value)
    assert hidden(tmp_path) == []


def test_processes_building_the_same_ids_at_once_build_them_once(tmp_path, mapped):
    corpus = tmp_path / "book.txt"
    corpus.write_text(make_text(2000), encoding="utf-8")
    notes, results = [], []

    def load():
        results.append(data.load_corpus([str(corpus)], DataConfig(), say=notes.append).train)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(notes) == 1 and len(results) == 3
    for r in results[1:]:
        np.testing.assert_array_equal(results[0], r)


def test_released_pages_read_again_the_same(tmp_path, mapped):
    corpus = tmp_path / "book.txt"
    corpus.write_text(make_text(3000), encoding="utf-8")
    c = data.load_corpus([str(corpus)], DataConfig())
    before = c.train.copy()
    c.release()
    np.testing.assert_array_equal(c.train, before)
    data.release_pages(np.zeros(3), before, None)  # arrays that map nothing: nothing to do


def test_training_on_a_mapped_corpus_is_training_in_memory_and_resumes_across(cli, tmp_path, monkeypatch):
    """The same run bit for bit; and a run begun in memory resumes on the mapped corpus (the same
    fingerprint), which also exercises the releases in the loop (save_every 10)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(make_text(), encoding="utf-8")
    opts = ["--config", CONFIGS / "tiny.yaml", "-q", "--set", "data.mode=lines"]
    assert cli("train", corpus, *opts, "--out", tmp_path / "memory")[0] == 0
    assert cli("train", corpus, *opts, "--out", tmp_path / "split", "--steps", 20)[0] == 0
    monkeypatch.setattr(encoded, "MAP_FROM", 1)
    assert cli("train", corpus, *opts, "--out", tmp_path / "mapped")[0] == 0
    assert cli("train", "--resume", tmp_path / "split", "--steps", 40, "-q")[0] == 0
    a, _ = checkpoint.read(tmp_path / "memory" / "latest.npz")
    for run in ("mapped", "split"):
        b, _ = checkpoint.read(tmp_path / run / "latest.npz")
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{run}: {name}")

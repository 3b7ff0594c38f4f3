"""What a validation scores of a large held-out text (heldout.py), and what the run says of it: the
default sample's size does not grow with the text, it is spread over the text and the same every time,
`val_max_chars: 0` still scores everything, and training speeds leave validation time out."""

import json

import numpy as np
import pytest

from charlstm import config, heldout, report
from charlstm.data import Corpus
from charlstm.vocab import Vocab
from conftest import CONFIGS

TINY = CONFIGS / "tiny.yaml"
HUNDREDS_OF_MB = 300 << 20


def held_out_corpus(val):
    return Corpus(Vocab("\nab"), np.zeros(10, np.uint8), val, [])


@pytest.fixture
def big_held_out(tmp_path):
    """300 MB of held-out ids mapped from a sparse file (no disk used): the held-out 5% of a 6 GB corpus."""
    path = tmp_path / "held-out.ids"
    with open(path, "wb") as f:
        f.truncate(HUNDREDS_OF_MB)
    return np.memmap(path, np.uint8, "r")


def scored(streams):
    return sum(len(s) - 1 for s in streams)


def test_the_default_validation_of_a_huge_held_out_text_is_bounded(big_held_out):
    streams = heldout.validation_streams(held_out_corpus(big_held_out), config.load())
    assert len(streams) == heldout.SAMPLE_PIECES
    assert sum(len(s) for s in streams) == heldout.SAMPLE_CHARS
    assert scored(streams) < heldout.SAMPLE_CHARS < HUNDREDS_OF_MB // 1000
    assert all(not isinstance(s, np.memmap) for s in streams)  # copies: nothing of the mapping kept


def test_the_sample_is_spread_over_the_whole_text_and_the_same_every_time():
    n, count = 50_000_000, heldout.SAMPLE_PIECES
    spans = heldout.pieces(n, heldout.SAMPLE_CHARS, count)
    assert spans == heldout.pieces(n, heldout.SAMPLE_CHARS, count)
    stretch = n // count
    assert [a // stretch for a, _ in spans] == list(range(count))  # one piece in each stretch, in order
    assert all(b // stretch == a // stretch for a, b in spans)  # not spilling into the next one
    assert spans[0][0] > 0 and spans[-1][1] < n  # seeded positions, not the first characters
    assert sum(b - a for a, b in spans) == heldout.SAMPLE_CHARS


def test_a_sampled_streams_text_is_the_held_out_text_at_those_places():
    rng = np.random.default_rng(0)
    val = rng.integers(0, 3, 2_000_000).astype(np.uint8)
    cfg = config.load(overrides=["train.val_max_chars=40000"])
    streams = heldout.validation_streams(held_out_corpus(val), cfg)
    spans = heldout.pieces(len(val), 40_000, 40_000 // heldout.MIN_PIECE)
    assert len(streams) == 10 and sum(len(s) for s in streams) == 40_000
    for s, (a, b) in zip(streams, spans):
        np.testing.assert_array_equal(s, val[a:b])


def test_small_held_out_texts_and_zero_are_scored_whole():
    val = np.arange(1000, dtype=np.int64) % 3
    for overrides in ([], ["train.val_max_chars=0"]):
        streams = heldout.validation_streams(held_out_corpus(val), config.load(overrides=overrides))
        np.testing.assert_array_equal(np.concatenate(streams), val)
    big = np.zeros(heldout.SAMPLE_CHARS * 3, np.uint8)
    streams = heldout.validation_streams(held_out_corpus(big), config.load(overrides=["train.val_max_chars=0"]))
    assert sum(len(s) for s in streams) == len(big)


@pytest.mark.parametrize("chars, val_streams, count", [(281, 32, 1), (281, 8, 1), (10_000, 32, 2), (40_000, 8, 8),
                                                      (55_769, 32, 13)])
def test_a_held_out_text_is_cut_into_no_streams_shorter_than_a_piece(chars, val_streams, count):
    """Each validation stream starts from the zero state: short streams would score mostly how the model
    starts from nothing, so a short held-out text makes fewer streams than data.val_streams."""
    val = np.arange(chars, dtype=np.int64) % 3
    cfg = config.load(overrides=[f"data.val_streams={val_streams}"])
    streams = heldout.validation_streams(held_out_corpus(val), cfg)
    assert len(streams) == count and min(map(len, streams)) >= min(chars, heldout.MIN_PIECE)
    np.testing.assert_array_equal(np.concatenate(streams), val)


def test_lines_mode_samples_whole_lines_spread_over_the_text():
    rng = np.random.default_rng(1)
    lengths = rng.integers(20, 200, 20_000)
    val = np.concatenate([np.concatenate([rng.integers(1, 3, k), [0]]) for k in lengths]).astype(np.uint8)
    cfg = config.load(overrides=["data.mode=lines", "train.val_max_chars=20000"])
    streams = [s.astype(np.uint8) for s in heldout.validation_streams(held_out_corpus(val), cfg)]
    lines = set()
    starts = np.concatenate([[0], np.flatnonzero(val == 0) + 1])
    for a, b in zip(starts[:-1], starts[1:]):
        lines.add(val[a : b - 1].tobytes())
    assert all(s[0] == 0 and s[-1] == 0 and 0 not in s[1:-1] and s[1:-1].tobytes() in lines for s in streams)
    assert abs(sum(len(s) - 1 for s in streams) - 20_000) < 64 * 200  # whole lines: about the budget
    assert len(streams) < len(lengths) // 10
    first, last = streams[0][1:-1].tobytes(), streams[-1][1:-1].tobytes()
    assert first != val[: lengths[0]].tobytes() and last != val[-lengths[-1] - 1 : -1].tobytes()


def test_a_saved_config_of_either_kind_still_parses():
    assert config.load().train.val_max_chars is None
    for value in (0, 30000, None):
        assert config.update(config.Config(), {"train": {"val_max_chars": value}}).train.val_max_chars == value
    with pytest.raises(config.ConfigError):
        config.update(config.Config(), {"train": {"val_max_chars": -1}})
    assert config.load(overrides=["train.val_max_chars=null"]).train.val_max_chars is None


def test_training_speeds_leave_validation_out(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(report.time, "monotonic", lambda: now[0])
    r = report.Reporter(True, None)
    r.stepped(1.0, 1.0, 1000)
    now[0] += 1.0  # a second of training
    r.set_aside(9.0)
    now[0] += 9.0  # nine of validating
    assert r.log_interval(1, 0.1, 0.01, 10.0)["chars_per_s"] == 1000
    r.stepped(1.0, 1.0, 1000)
    now[0] += 1.0
    assert r.log_interval(2, 0.2, 0.01, 11.0)["chars_per_s"] == 1000  # the next interval starts clean
    p = type("P", (), {"step": 2, "last_val": float("nan"), "best_val": float("nan"), "best_step": -1})()
    summary = r.summary(p, None, 0.2, 2, "run", 500)
    assert summary["chars_per_s"] == pytest.approx(1000) and summary["validation_seconds"] == 9.0


def test_a_run_says_what_it_validates_and_how_long_it_took(cli, corpus, tmp_path, monkeypatch):
    monkeypatch.setattr(heldout, "SAMPLE_CHARS", 300)
    monkeypatch.setattr(heldout, "MIN_PIECE", 100)
    code, _, err = cli("train", corpus, "--config", TINY, "--out", tmp_path / "run", "--steps", 20)
    assert code == 0
    note = next(line for line in err.splitlines() if "held-out characters" in line)
    assert "the same 297 of the" in note and "0 scores all" in note  # 3 pieces of 100: 99 targets each
    assert err.index(note) < err.index("training lstm")  # among the first lines, before training
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["val_seconds"] >= 0 for r in records if "val_loss" in r] == [True]
    code, out, err = cli("train", corpus, "--config", TINY, "--dry-run")
    assert code == 0 and "validation  297 characters scored every 20 steps, a fixed sample" in out + err


def test_a_long_validation_says_how_long_it_will_take(cli, corpus, tmp_path, monkeypatch):
    from charlstm import train

    monkeypatch.setattr(heldout, "SAMPLE_CHARS", 100)
    monkeypatch.setattr(train, "LONG_VALIDATION", 0.0)
    code, _, err = cli("train", corpus, "--config", TINY, "--out", tmp_path / "run", "--steps", 2,
                       "--set", "train.val_max_chars=0")
    assert code == 0 and "note: each validation scores" in err and "will take about" in err

"""Names never seen: fresh names for every story, the held-out name pools, weighting chosen characters of
the loss (data.loss_pattern) and what a pointer model shows in inspect."""

import collections
import random
import re
import string

import numpy as np
import pytest

from charlstm import config, corpus, inspection, model, openworld
from charlstm.data import LineBatches, StreamBatches, Vocab, make_batches
from charlstm.errors import ConfigError
from charlstm.givennames import GIVEN_NAMES
from test_rooms import FORM1, FORM2

TEST_POOLS = ("unseen", "unseen-final", "real", "real-final")


def cast_of(story):
    m1, m2 = FORM1.match(story.text), FORM2.match(story.text)
    assert bool(m1) != bool(m2), story.text
    groups = m1.groups() if m1 else m2.groups()
    return [g for g in groups if g and re.fullmatch(r"[A-Z][a-z]+", g)]


def test_fresh_names_are_new_for_nearly_every_story_and_never_a_test_name():
    stories = corpus.open_rooms(3000, seed=4, names="fresh")
    names = [n for s in stories for n in set(cast_of(s))]
    counts = collections.Counter(names)
    assert len(counts) > 0.8 * len(names)  # most names drawn once (short ones come back: two letters)
    test_names = set(corpus.CAST).union(*(openworld.names(p) for p in TEST_POOLS))
    assert not set(names) & test_names
    assert {n[0] for n in names} == set(string.ascii_uppercase)
    lengths = {len(n) for n in names}
    assert min(lengths) == 2 and max(lengths) == 12
    assert any(re.search(r"([a-z])\1", n) for n in names)  # doubled letters, as in Anna


def test_fresh_names_avoid_held_out_names_even_when_drawn():
    rng = random.Random(0)
    drawn = {openworld.fresh_name(rng) for _ in range(50000)}
    assert not drawn & set(GIVEN_NAMES) and not drawn & set(openworld.names("unseen"))
    assert all(not openworld._unseen(n) for n in drawn)


def test_held_out_pools_are_disjoint_and_cover_every_initial():
    pools = {p: set(openworld.names(p)) for p in (*TEST_POOLS, "seen")}
    for a in pools:
        for b in pools:
            if a < b and not {a, b} <= {"seen", "real", "real-final"}:  # seen (old) may hold a real name
                assert not pools[a] & pools[b], (a, b)
    assert not pools["real"] & pools["real-final"]
    assert pools["real"] | pools["real-final"] == set(GIVEN_NAMES) - pools["unseen"]
    assert len(GIVEN_NAMES) >= 300
    for p in ("unseen-final", "real", "real-final"):
        assert len({n[0] for n in pools[p]}) >= 20, p
    with pytest.raises(ValueError):
        openworld.names("nobody")


NAMES_CORPUS = "charlstm corpus rooms --open --names fresh --closed-share 0.1 --stories 200000 --seed 5"
POLISH_CORPUS = "charlstm corpus rooms --open --names fresh --closed-share 0.15 --stories 200000 --seed 5"


def _written_corpus(tmp_path_factory, command, preset, name):
    """The text `command` writes, as configs/<preset>.yaml says to write it to `name` (30 MB: not shipped)."""
    from conftest import ROOT, run_cli

    assert f"{command} > {name}" in (ROOT / "configs" / f"{preset}.yaml").read_text()
    code, out, err = run_cli(*command.split()[1:], timeout=600)
    assert code == 0, err
    path = tmp_path_factory.mktemp(preset) / name
    path.write_text(out)
    return path


@pytest.fixture(scope="module")
def names_corpus(tmp_path_factory):
    """The names model's training text, written as configs/rooms-names.yaml says."""
    return _written_corpus(tmp_path_factory, NAMES_CORPUS, "rooms-names", "rooms-names-train.txt")


@pytest.fixture(scope="module")
def polish_corpus(tmp_path_factory):
    """The text of the shipped model's last 400 steps, as configs/rooms-names-polish.yaml says."""
    return _written_corpus(tmp_path_factory, POLISH_CORPUS, "rooms-names-polish", "rooms-names-closed15.txt")


def test_seen_fillers_never_open_with_a_test_name():
    rng = random.Random(3)
    openers = {openworld.filler(rng, "seen").split()[0].strip(",") for _ in range(30000)}
    assert not openers & (set(GIVEN_NAMES) | set(openworld.names("unseen-final")))


def test_shipped_test_sets_hold_the_pools_they_claim(names_corpus):
    from conftest import ROOT

    trained = set(re.findall(r"\w+", names_corpus.read_text()))
    for path, pool in (("rooms-cloze-newnames.tsv", "unseen"), ("rooms-cloze-realnames.tsv", "real"),
                       ("final/rooms-newnames.tsv", "unseen-final"), ("final/rooms-realnames.tsv", "real-final")):
        lines = (ROOT / "data" / path).read_text().splitlines()
        assert len(lines) == 1000
        answers = {line.split("\t")[1] for line in lines}
        assert answers <= set(openworld.names(pool)), path
        assert not answers & trained, path


# ---------------------------------------------------------------------------------------------- weights


def batches_for(text, mode, pattern, weight=5.0, **data):
    cfg = config.load(overrides=[f"data.mode={mode}", "data.batch=2", "data.window=40", f"data.loss_weight={weight}",
                                 f"data.loss_pattern={pattern}", *(f"data.{k}={v}" for k, v in data.items())])
    assert cfg.data.loss_pattern == pattern
    vocab = Vocab.from_text(text)
    return make_batches(vocab.encode(text), vocab, cfg.data, 0), vocab


def test_loss_pattern_weighs_the_groups_it_matches_in_lines_mode():
    text = "Ann said hi to Bo.\nCy said hi to Deena.\n"
    batches, vocab = batches_for(text, "lines", r"(\w+) said hi to (\w+)")
    assert isinstance(batches, LineBatches)
    window = batches.window(0, 0)
    for b in range(2):
        line = vocab.decode(window.y[:, b]).split("\n")[0]
        weighted = "".join(c for c, w in zip(vocab.decode(window.y[:, b]), window.mask[:, b]) if w == 5.0)
        speaker, greeted = re.match(r"(\w+) said hi to (\w+)", line).groups()
        assert weighted == speaker + greeted
    assert set(np.unique(window.mask)) == {0.0, 1.0, 5.0}
    assert window.targets() == np.count_nonzero(window.mask)  # a weighted target counts once


def test_loss_pattern_without_groups_weighs_the_whole_match_in_stream_mode():
    text = "the cat sat. " * 20
    batches, vocab = batches_for(text, "stream", "cat", weight=3.0, random_offset=False)
    assert isinstance(batches, StreamBatches)
    window = batches.window(0, 0)
    for b in range(2):
        chars = vocab.decode(window.y[:, b])
        for t, c in enumerate(chars):
            in_cat = any(chars[max(0, t - k) : t - k + 3] == "cat" for k in range(3) if t - k >= 0)
            assert window.mask[t, b] == (3.0 if in_cat else 1.0), (chars, t)


def test_weighted_loss_is_the_weighted_mean():
    spec = model.Spec("lstm", 4, 3, 1)
    params = model.init_params(spec, np.random.default_rng(0), np.float64)
    x = np.array([[0, 1], [2, 3], [1, 1]])
    y = np.array([[1, 2], [3, 0], [0, 2]])
    mask = np.array([[1.0, 5.0], [5.0, 1.0], [1.0, 0.0]])
    from charlstm.data import Window

    weighted, _, _ = model.forward(params, Window(x, y, mask), model.zero_state(spec, 2, np.float64))
    each = []
    for t in range(3):
        for b in range(2):
            one = np.zeros((3, 2))
            one[t, b] = 1.0
            each.append(model.forward(params, Window(x, y, one), model.zero_state(spec, 2, np.float64))[0])
    assert np.isclose(weighted, np.dot(mask.reshape(-1), each) / mask.sum())


@pytest.mark.parametrize("overrides, message", [
    (["data.loss_weight=5"], "give a pattern too"),
    (["data.loss_pattern=(unclosed", "data.loss_weight=5"], "not a valid regular expression"),
    (["data.loss_pattern=x", "data.loss_weight=0"], "positive finite"),
    (["data.loss_pattern=x", "data.loss_weight=.nan"], "positive finite"),
    (["model.pointer=-1"], "model.pointer"),
    (["model.pointer=8", "train.engine=torch"], "numpy engine"),
])
def test_bad_weighting_and_pointer_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config.load(overrides=overrides)


def test_training_notes_what_the_pattern_marks(tmp_path, cli):
    (tmp_path / "t.txt").write_text("Ann said hi to Bo.\nCy said hi to Dee.\n" * 40)
    code, _, err = cli("train", str(tmp_path / "t.txt"), "--config", "tiny", "--steps", "2", "--set", "data.mode=lines",
                       "--set", r"data.loss_pattern=(\w+) said hi to (\w+)", "--set", "data.loss_weight=4",
                       "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert re.search(r"data.loss_pattern marks 360 characters .* they weigh 4", err), err


# ----------------------------------------------------------------------------------------------- inspect


def test_inspect_shows_the_pointer_s_share_of_each_prediction():
    spec = model.Spec("lstm", 5, 4, 1, pointer=3)
    params = model.init_params(spec, np.random.default_rng(1), np.float64)
    ids = np.array([0, 1, 2, 0, 1, 2])
    traced = inspection.trace(params, ids, lead=np.array([4]))
    share = traced["copy"]
    assert share[0] == 0.0  # after the lead alone there is nothing to copy from
    assert np.all((share[1:] > 0) & (share[1:] < 1))
    rows = inspection.quantities(traced, spec, ["copy"], 0)
    assert rows[0][0].startswith("copy") and rows[0][2] == "gate"
    no_pointer = inspection.trace(model.init_params(model.Spec("lstm", 5, 4, 1), np.random.default_rng(1)), ids)
    assert "copy" not in no_pointer


# --------------------------------------------------------------------- the names model, data/rooms.npz

NAMES_MODEL_ACCURACY = {"rooms-cloze-realnames.tsv": 0.96, "rooms-cloze-newnames.tsv": 0.955}


def test_the_names_model_is_made_by_its_presets_and_their_corpora(names_corpus, polish_corpus):
    """data/rooms.npz: an LSTM with a pointer, trained by configs/rooms-names.yaml, then 400 steps more by
    configs/rooms-names-polish.yaml, each on the text its corpus command writes, byte for byte
    (docs/memory.md says for how long). The first run's model is not shipped; the checkpoint records it
    (meta "init_from": its step, config and corpus fingerprint)."""
    import dataclasses

    from conftest import ROOT
    from charlstm import checkpoint

    ckpt = checkpoint.load(ROOT / "data" / "rooms.npz")
    first = config.load(ROOT / "configs" / "rooms-names.yaml", [])
    recipe = config.load(ROOT / "configs" / "rooms-names-polish.yaml", [])
    assert recipe.model.init_from == "runs/rooms-names-train"  # where the first preset's run lands
    assert ckpt.config.model.init_from.endswith(recipe.model.init_from)  # a run records the path it resolved
    assert ckpt.spec.cell == "lstm" and ckpt.spec.pointer == 32
    assert dataclasses.replace(ckpt.config.model, init_from=recipe.model.init_from) == recipe.model
    assert dataclasses.replace(first.model, init_from=recipe.model.init_from) == recipe.model
    assert (ckpt.config.data, ckpt.config.optim) == (recipe.data, recipe.optim)
    assert ckpt.step == recipe.train.steps == 400
    from charlstm.data import load_corpus
    from charlstm.trainstate import corpus_record

    corpus = load_corpus([str(polish_corpus)], recipe.data)
    assert ckpt.meta["corpus"]["sha256"] == corpus_record(corpus, None)["sha256"]  # its text, wherever it was
    origin = ckpt.meta["init_from"]  # the first run's last checkpoint
    made = config.from_dict(origin["config"])
    assert origin["step"] == first.train.steps == 5000 and "init_from" not in origin
    assert (made.model, made.data, made.optim) == (first.model, first.data, first.optim)
    corpus = load_corpus([str(names_corpus)], first.data)
    assert origin["corpus_sha256"] == corpus_record(corpus, None)["sha256"]


@pytest.mark.parametrize("name", sorted(NAMES_MODEL_ACCURACY))
def test_the_names_model_scores_what_the_docs_say(cli, name):
    import json

    from conftest import ROOT

    code, out, err = cli("eval", "--cloze", ROOT / "data" / name, "--format", "json")  # the shipped model
    assert code == 0, err
    report = json.loads(out)
    assert report["n"] == 1000 and report["accuracy"] >= NAMES_MODEL_ACCURACY[name]

"""The open rooms world: disjoint name and filler pools, the stories' forms, the CLI, the ASCII vocabulary."""

import re
import string

from charlstm import checkpoint, corpus, openworld
from test_rooms import FORM1, FORM2

STOPWORDS = {"the", "a", "is", "in", "on", "of", "to", "it", "by", "two", "every", "someone", "somebody",
             "nothing", "outside", "through", "today", "beside", "near", "under", "across", "along", "onto"}


def content_words(pool, n=20000):
    import random

    rng = random.Random(0)
    words = set()
    for _ in range(n):
        words.update(w.strip(".,").lower() for w in openworld.filler(rng, pool).split())
    return words - STOPWORDS


def test_name_pools_are_large_disjoint_and_cover_every_initial():
    seen, unseen = openworld.names("seen"), openworld.names("unseen")
    assert len(seen) > 5000 and len(unseen) > 1000
    assert not set(seen) & set(unseen)
    for pool in (seen, unseen):
        assert {n[0] for n in pool} == set(string.ascii_uppercase)
        assert all(re.fullmatch(r"[A-Z][a-z]{2,7}", n) for n in pool)
    assert {c for n in seen for c in n[1:]} >= set("qxz")
    assert not set(seen) & set(corpus.CAST) and not set(unseen) & set(corpus.CAST)


def test_filler_pools_share_no_content_word_and_hold_thousands_of_sentences():
    import random

    rng = random.Random(1)
    for pool in ("seen", "unseen"):
        sentences = {openworld.filler(rng, pool) for _ in range(50000)}
        assert len(sentences) > 2000
        assert all(s[0].isupper() and s.endswith(".") and not re.search(r" [A-Z]", s) for s in sentences)
    seen, unseen = content_words("seen"), content_words("unseen")
    assert len(seen) > 100 and len(unseen) > 80
    assert not seen & unseen, seen & unseen
    closed = {word.lower() for sentence in corpus.FILLERS for word in sentence.strip(".").split()}
    assert not closed & unseen, closed & unseen  # the twelve's fillers are trained on too


def test_open_stories_keep_the_two_forms_and_draw_from_the_pools_asked_for():
    for names, fillers in (("seen", "seen"), ("unseen", "seen"), ("seen", "unseen"), ("unseen", "unseen")):
        pool = set(openworld.names(names))
        stories = corpus.open_rooms(400, seed=2, names=names, fillers=fillers, split="test")
        for s in stories:
            m1, m2 = FORM1.match(s.text), FORM2.match(s.text)
            assert bool(m1) != bool(m2), s.text
            groups = m1.groups() if m1 else m2.groups()
            cast = [g for g in groups if g and re.fullmatch(r"[A-Z][a-z]+", g)]
            assert set(cast) <= pool and s.answer in pool
            assert corpus.story_gap(s.prompt) == s.gap <= 120
            assert s.prompt == s.text.replace(f"said hi to {s.answer}.", "said hi to ___.")
        words = {w.strip(".,").lower() for s in stories for w in s.text.split()} - STOPWORDS
        words -= {n.lower() for n in pool} | {"walks", "walk", "also", "room", "and", "together", "later", "said", "hi"}
        other = "seen" if fillers == "unseen" else "unseen"
        assert not words & content_words(other)
        assert max(s.gap for s in stories) > 80


def test_half_the_words_of_seen_fillers_are_made_up_and_none_is_an_unseen_word():
    import random

    rng = random.Random(2)
    real = {w.strip(".,{}").lower() for values in openworld.FILLER_WORLDS["seen"].values() for v in values
            for w in v.split()}
    words = [w.strip(".,").lower() for _ in range(3000) for w in openworld.filler(rng, "seen").split()[1:]]
    made_up = [w for w in words if w not in real]
    assert 0.2 < len(made_up) / len(words) < 0.5 and len(set(made_up)) > 1000  # half the fields; fields hold
    # phrases ("near the door") as well as words, so made-up words are fewer than half the words
    assert all(re.fullmatch(r"[a-z]{2,9}", w) for w in made_up)
    assert not set(made_up) & content_words("unseen")
    openers = [openworld.filler(rng, "seen").split()[0].strip(",") for _ in range(3000)]
    assert len({w[0] for w in openers}) >= 20  # a capital opens fillers and names alike: not a name's cue
    names = set(openworld.names("seen")) | set(openworld.names("unseen")) | set(corpus.CAST)
    assert not set(openers) & names


def test_a_closed_share_mixes_in_the_twelve_and_their_fillers():
    stories = corpus.open_rooms(1000, seed=0, closed_share=0.25)
    closed = [s for s in stories if s.answer in corpus.CAST]
    assert 180 < len(closed) < 320
    for s in closed:
        fill = s.text[s.text.rfind("walks in to the room.") + 22 : s.text.rfind(". ") + 1]
        assert all(f in corpus.FILLERS for f in re.findall(r"[A-Z][^.]*\.", fill)), fill
    assert not [s for s in corpus.open_rooms(500, seed=0) if s.answer in corpus.CAST]


def test_open_corpus_cli(cli):
    code, out, _ = cli("corpus", "rooms", "--open", "--stories", 30, "--seed", 3)
    assert code == 0 and len(out.splitlines()) == 30
    assert out == cli("corpus", "rooms", "--open", "--stories", 30, "--seed", 3)[1]
    assert out != cli("corpus", "rooms", "--open", "--stories", 30, "--seed", 3, "--split", "test")[1]
    code, out, _ = cli("corpus", "rooms", "--open", "--stories", 30, "--names", "unseen", "--fillers", "unseen",
                       "--split", "test", "--cloze")
    unseen = set(openworld.names("unseen"))
    assert code == 0 and all(line.split("\t")[1] in unseen for line in out.splitlines())
    for args, message in ((["--names", "unseen"], "--names needs --open"),
                          (["--closed-share", 0.5], "--closed-share needs --open"),
                          (["--open", "--cast", "x.txt"], "--cast is for the closed world")):
        code, out, err = cli("corpus", "rooms", *args)
        assert code == 2 and message in err and out == ""


def test_the_ascii_vocabulary_reads_letters_the_text_lacks(cli, tmp_path):
    text = "".join(s.text + "\n" for s in corpus.rooms(60, seed=1))
    (tmp_path / "rooms.txt").write_text(text)
    for vocab, size in (("corpus", len(set(text))), ("ascii", 97)):
        run = tmp_path / vocab
        code, _, err = cli("train", tmp_path / "rooms.txt", "--config", "tiny", "--steps", 2, "--out", run, "-q",
                           "--set", f"data.vocab={vocab}")
        assert code == 0, err
        assert len(checkpoint.load(run).vocab) == size
    code, out, err = cli("sample", "-c", tmp_path / "ascii", "--greedy", "--length", 3, "Xavier & Zoe [q]")
    assert code == 0 and out.startswith("Xavier & Zoe [q]"), err
    code, out, err = cli("sample", "-c", tmp_path / "corpus", "--greedy", "--length", 3, "Xavier")
    assert code == 1 and "not in the model's vocabulary" in err

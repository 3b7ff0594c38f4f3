"""`charlstm eval`: the cross-entropy definition, streams, formats and cloze accuracy."""

import json
import math

import numpy as np
import pytest

import naive
from charlstm import checkpoint, evaluate
from conftest import FOUR, run_cli


def reference_nats(params, ids):
    """The definition, by the step-by-step model in float64: mean over t = 1..N-1 of
    -log p(x_t | x_0..x_{t-1}), from the zero state."""
    p64 = {k: v.astype(np.float64) for k, v in params.items()}
    H = p64["decoder.weight"].shape[1]
    L = sum(1 for k in p64 if "weight_hh" in k)
    state = (np.zeros((L, 1, H)), np.zeros((L, 1, H)))
    logits, _ = naive.run("lstm", p64, np.asarray(ids)[:-1, None], state)
    z = logits[:, 0] - logits[:, 0].max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(ids) - 1), np.asarray(ids)[1:]].sum(), len(ids) - 1


@pytest.fixture
def texts(tmp_path):
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text("the cat sat on the mat.\nmy fish swam in the bowl.\n")
    b.write_text("a bird sang in the rug.\n")
    return a, b


def test_eval_matches_the_definition(cli, four_run, texts):
    a, _ = texts
    code, out, err = cli("eval", "-c", four_run, a, "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"chars", "nats_per_char", "bits_per_char", "perplexity", "files"}
    assert report.pop("files") == [{"file": str(a), **report}]
    ckpt = checkpoint.load(four_run)
    total, n = reference_nats(ckpt.params, ckpt.vocab.encode(a.read_text()))
    assert report["chars"] == n == len(a.read_text()) - 1
    assert report["nats_per_char"] == pytest.approx(total / n, rel=1e-5)
    assert report["bits_per_char"] == pytest.approx(report["nats_per_char"] / math.log(2), rel=1e-12)
    assert report["perplexity"] == pytest.approx(math.exp(report["nats_per_char"]), rel=1e-12)


def test_files_are_parallel_streams_and_the_window_only_changes_speed(cli, four_run, texts):
    a, b = texts
    both = json.loads(cli("eval", "-c", four_run, a, b, "--format", "json", "--window", 5)[1])
    ra = json.loads(cli("eval", "-c", four_run, a, "--format", "json")[1])
    rb = json.loads(cli("eval", "-c", four_run, b, "--format", "json", "--window", 1000)[1])
    assert both["chars"] == ra["chars"] + rb["chars"]
    pooled = (ra["nats_per_char"] * ra["chars"] + rb["nats_per_char"] * rb["chars"]) / both["chars"]
    assert both["nats_per_char"] == pytest.approx(pooled, rel=1e-5)
    for alone, each in zip((ra, rb), both["files"]):  # each file's own figures, side by side with the other
        assert each["chars"] == alone["chars"]
        for key in ("nats_per_char", "bits_per_char", "perplexity"):
            assert each[key] == pytest.approx(alone[key], rel=1e-5)


def test_several_files_are_reported_one_by_one_and_together(cli, four_run, texts, tmp_path):
    a, b = texts
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    code, out, err = cli("eval", "-c", four_run, a, empty, b)
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["file", "chars", "nats/char", "bits/char", "perplexity"]
    assert [r[0] for r in rows[1:]] == [str(a), str(empty), str(b), "all"] and rows[2][1:] == ["0", "-", "-", "-"]
    code, _, err = cli("eval", "-c", four_run, empty)
    assert code == 1 and err == f"error: nothing to score in {empty}: each text needs at least two characters\n"
    assert "nothing to score in stdin:" in cli("eval", "-c", four_run, "-", stdin="a")[2]
    report = json.loads(cli("eval", "-c", four_run, a, empty, b, "--format", "json")[1])
    assert [f["file"] for f in report["files"]] == [str(a), str(empty), str(b)]
    assert report["files"][1] == {"file": str(empty), "chars": 0, "nats_per_char": None, "bits_per_char": None,
                                  "perplexity": None}
    for row, f in zip(rows[1:], report["files"] + [report]):
        assert row[1] == f"{f['chars']:,}" and (f["chars"] == 0 or row[2] == f"{f['nats_per_char']:.4f}")


def test_text_report_and_stdin(cli, four_run, texts):
    a, _ = texts
    code, out, _ = cli("eval", "-c", four_run, "-", stdin=a.read_text())
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["chars", "nats/char", "bits/char", "perplexity"]
    assert lines[0].split()[1] == str(len(a.read_text()) - 1)
    assert json.loads(cli("eval", "-c", four_run, a, "--format", "json")[1])["nats_per_char"] == \
        pytest.approx(float(lines[1].split()[1]), abs=1e-4)


def test_unknown_characters_in_eval(cli, four_run, tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("the cat sat on the Mat!\n")
    code, _, err = cli("eval", "-c", four_run, f)
    assert code == 1 and "'!' 'M'" in err and "--unknown skip" in err and err.count("\n") == 1
    code, out, err = cli("eval", "-c", four_run, f, "--unknown", "skip", "--format", "json")
    assert code == 0 and "warning" in err and json.loads(out)["chars"] == len("the cat sat on the at\n") - 1


def test_cloze_accuracy(cli, four_run, tmp_path):
    """Exact match: wrong answer keys the model's fill (mat) differs from at the first letter, at a later
    one, or by being longer or shorter are all misses."""
    cloze = tmp_path / "cloze.tsv"
    lines = [f"{s.rsplit(' ', 1)[0]} ___.\t{s.rsplit(' ', 1)[1][:-1]}" for s in FOUR]
    wrong = ["rug", "mud", "mats", "ma"]
    lines += [f"the cat sat on the ___.\t{key}" for key in wrong]  # wrong answer keys: the model says mat
    cloze.write_text("\n".join(lines) + "\n")
    code, out, err = cli("eval", "-c", four_run, "--cloze", cloze, "--format", "json")
    assert code == 0, err
    assert json.loads(out) == {"accuracy": 0.5, "n": 8}
    code, out, _ = cli("eval", "-c", four_run, "--cloze", cloze, "--verbose")
    rows = out.splitlines()
    assert rows[-1] == "cloze accuracy 0.5000 (4/8)"
    assert rows[0] == "result\tanswer\tfill\tprompt"
    assert [row.split("\t")[:3] for row in rows[5:9]] == [["MISS", key, "mat"] for key in wrong]
    assert rows[1].split("\t")[:3] == ["ok", "mat", "mat"]
    code, out, _ = cli("eval", "-c", four_run, "--cloze", cloze, "--verbose", "--format", "json")
    report = json.loads(out)  # the items inside the one JSON object: stdout stays JSON
    assert report["accuracy"] == 0.5 and len(report["items"]) == 8
    assert report["items"][4] == {"prompt": "the cat sat on the ___.", "answer": "rug", "fill": "mat", "ok": False}


def test_bad_cloze_files(cli, four_run, tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("no tab here\n")
    code, _, err = cli("eval", "-c", four_run, "--cloze", bad)
    assert code == 1 and "line 1: expected PROMPT<TAB>ANSWER" in err
    for line, said in [("the ___ sat on the ___.\tcat", "line 2: a prompt may hold one blank (___), not 2"),
                       ("the cat sat on the ___.\t", "line 2: the answer '' is empty"),
                       ("the cat sat on the ___.\tgrey mat.", "line 2: the answer 'grey mat.' holds ' ' '.', "
                                                              "where a fill ends (a fill is one word")]:
        bad.write_text("the cat sat on the ___.\tmat\n" + line + "\n")
        code, _, err = cli("eval", "-c", four_run, "--cloze", bad)
        assert code == 1 and err.startswith(f"error: {bad} {said}") and err.count("\n") == 1, err
    bad.write_text("the cat sat on the ___.\tO'Brien-Smith2\n")  # letters, digits, ' and - make one word
    assert cli("eval", "-c", four_run, "--cloze", bad)[0] == 0


def test_score_pools_streams_of_different_lengths(four_run):
    ckpt = checkpoint.load(four_run)
    ids = [ckpt.vocab.encode(s + "\n") for s in FOUR] + [ckpt.vocab.encode("a")]
    total, count = evaluate.score(ckpt.params, ids, window=4)
    parts = [evaluate.score(ckpt.params, [s]) for s in ids]
    assert count == sum(len(s) - 1 for s in ids)
    assert total == pytest.approx(sum(t for t, _ in parts), rel=1e-5)


def _eval_on_a_terminal(*args):
    """charlstm eval with stderr on a pseudo-terminal (stdout a pipe): (exit status, stdout, stderr)."""
    import os
    import pty
    import subprocess
    import sys

    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "CHARLSTM_DEBUG"}
    proc = subprocess.Popen([sys.executable, "-m", "charlstm", "eval", *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=terminal, env=env)
    os.close(terminal)
    err = b""
    while True:
        try:
            chunk = os.read(controller, 1 << 16)
        except OSError:  # EIO: the process has closed the terminal
            break
        if not chunk:
            break
        err += chunk
    os.close(controller)
    out = proc.stdout.read().decode()
    return proc.wait(timeout=60), out, err.decode(errors="replace")


def test_a_long_text_shows_progress_on_a_terminal_only(four_run, tmp_path):
    long = tmp_path / "long.txt"
    long.write_text("".join(FOUR[i % 4] + "\n" for i in range(2500)))  # 61,875 characters
    n = len(long.read_text()) - 1
    code, out, err = _eval_on_a_terminal("-c", four_run, long)
    assert code == 0 and out.startswith(f"chars        {n:,}\n"), err
    from tqdm import tqdm

    assert f"scoring {n:,} characters" in err and "scoring:" in err and f"/{tqdm.format_sizeof(n)} [" in err and "char/s]" in err  # scored of total; rate
    code, out, err = _eval_on_a_terminal("-c", four_run, long, "--quiet")
    assert code == 0 and out.startswith("chars") and err == ""
    short = tmp_path / "short.txt"
    short.write_text(FOUR[0] * 10)
    assert _eval_on_a_terminal("-c", four_run, short)[2] == ""
    code, out, err = run_cli("eval", "-c", four_run, long)  # stderr a pipe: no bar, but the length announced
    assert code == 0 and out.startswith(f"chars        {n:,}\n") and err == f"scoring {n:,} characters\n"


def test_a_model_trained_on_lines_is_scored_line_by_line(cli, tmp_path):
    """The shipped model read every story from the zero state after a newline (data.mode lines): `eval`
    scores each line so, so a story written twice scores as it does once (carrying the state across the
    newline, it scored 2.08 nats a character against 0.27)."""
    story = "Mady walks in to the room, Monica also walks in to the room. Mady said hi to Monica.\n"
    reports = []
    for n in (1, 2):
        (tmp_path / f"{n}.txt").write_text(story * n)
        code, out, err = cli("eval", tmp_path / f"{n}.txt", "--format", "json")
        assert code == 0, err
        reports.append(json.loads(out))
    assert reports[1]["chars"] == 2 * reports[0]["chars"] == 2 * len(story)  # every character, each newline
    assert reports[1]["nats_per_char"] == pytest.approx(reports[0]["nats_per_char"], rel=1e-6)
    assert reports[0]["nats_per_char"] < 0.3


def test_a_pointer_model_is_scored_with_its_training_window(cli, tmp_path):
    """A pointer sees the earlier positions of its own window only, so `eval` scores a model with one
    with the window it was trained with unless told otherwise, and says so when told (with the window's
    default of 256, a stream-mode pointer model trained on windows of 16 scored otherwise than its
    validation did)."""
    from charlstm import assets

    shipped = checkpoint.load(assets.MODEL)
    meta = dict(shipped.meta, config={**shipped.meta["config"],
                                      "data": {**shipped.meta["config"]["data"], "mode": "stream", "window": 16}})
    path = tmp_path / "pointer16.npz"
    checkpoint.write(path, shipped.params, meta)
    text = tmp_path / "two.txt"
    text.write_text("Mady walks in to the room, Monica also walks in to the room. Mady said hi to Monica.\n" * 2)
    scores = {}
    for window in (None, 16, 256):
        code, out, err = cli("eval", "-c", path, text, "--format", "json", *(["--window", window] if window else []))
        assert code == 0, err
        scores[window] = json.loads(out)["nats_per_char"]
        assert ("pointer sees only the positions of its window" in err) == (window == 256)
    assert scores[None] == scores[16] != scores[256]


def test_line_streams_score_a_newline_only_where_the_text_has_one():
    from charlstm.evaluate import line_streams

    ids = np.array([5, 0, 0, 6, 7, 0, 8], np.uint8)  # "a\n\nbc\nd" with 0 the newline: a blank line, no final newline
    assert [s.tolist() for s in line_streams(ids, 0)] == [[0, 5, 0], [0, 6, 7, 0], [0, 8]]
    assert all(s.dtype == ids.dtype for s in line_streams(ids, 0)) and line_streams(ids[:0], 0) == []


def test_a_run_directory_given_without_c_is_refused_with_the_fix(four_run, tmp_path):
    """`charlstm eval runs/x text.txt` scored the run's config.yaml and metrics.jsonl with the shipped model,
    and `charlstm sample runs/x 'The'` completed the path as a prompt: both now say to give it with -c."""
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat.\n")
    for command, what in (("eval", "a text to score"), ("sample", "a prompt")):
        code, out, err = run_cli(command, four_run, str(text) if command == "eval" else "the")
        assert code == 2 and out == "", err
        assert f"{four_run} is a run directory, not {what}: give it with -c, as in charlstm {command} -c" in err
    code, out, err = run_cli("eval", "-c", four_run, tmp_path)  # a directory of texts, no run: scored
    assert code == 0 and "is a run directory" not in err, err


def test_verbose_without_cloze_is_refused(four_run, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat.\n")
    code, out, err = run_cli("eval", "-c", four_run, "-v", text)
    assert code == 2 and out == "" and "--verbose lists the --cloze lines one by one: give --cloze FILE" in err, err

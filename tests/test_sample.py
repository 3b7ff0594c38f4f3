"""`charlstm sample`: completion, blanks, sampling controls, batching and shell pipelines."""

import json
import subprocess
import sys

import numpy as np
import pytest

from charlstm import checkpoint, evaluate, model
from charlstm import sample as sample_mod
from charlstm.errors import DataError
from charlstm.streams import Writer, prompt_batches
from conftest import FOUR, run_cli


def test_greedy_fills_each_blank(cli, four_run):
    prompts = ["the cat sat on the ___.", "the dog lay on the ___.", "my fish swam in the ___.",
               "a bird sang in the ___."]
    code, out, err = cli("sample", "-c", four_run, "--greedy", *prompts)
    assert code == 0, err
    assert out.splitlines() == [FOUR[0], FOUR[1], FOUR[3], FOUR[2]]


def test_a_run_directory_or_a_file_names_the_checkpoint(cli, four_run):
    a = cli("sample", "-c", four_run, "--greedy", "the dog lay on the ___.")
    b = cli("sample", "-c", four_run / "best.npz", "--greedy", "the dog lay on the ___.")
    assert a == b and a[1] == "the dog lay on the rug.\n"


def test_same_seed_same_text_other_seed_other_text(cli, four_run):
    runs = [cli("sample", "-c", four_run, "-n", 120, "--seed", s, "-t", "1.5", "the ")[1] for s in (1, 1, 2)]
    assert runs[0] == runs[1] != runs[2]
    assert all(r.startswith("the ") for r in runs)


def test_length_until_and_num_samples(cli, four_run):
    code, out, _ = cli("sample", "-c", four_run, "-n", 300, "--seed", 3, "--until", "bowl.", "--num-samples", 4,
                       "--format", "jsonl", "my fish")
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 4 and all(r["prompt"] == "my fish" and r["seed"] == 3 for r in records)
    for r in records:
        assert r["completion"].endswith("bowl.") and r["completion"].count("bowl.") == 1
        assert r["text"] == "my fish" + r["completion"]
    code, out, _ = cli("sample", "-c", four_run, "-n", 17, "--seed", 3, "--format", "jsonl", "a")
    assert len(json.loads(out)["completion"]) == 17


def test_jsonl_logprob_is_the_models_log_probability_of_the_completion(cli, four_run):
    code, out, _ = cli("sample", "-c", four_run, "-n", 40, "--seed", 5, "--format", "jsonl", "the dog")
    record = json.loads(out)
    ckpt = checkpoint.load(four_run)
    ids = ckpt.vocab.encode("\n" + record["text"])
    # log p(completion | prompt) = log p(text) - log p(prompt), each read after a newline from the zero state
    whole, _ = evaluate.score(ckpt.params, [ids])
    prompt, _ = evaluate.score(ckpt.params, [ids[: 1 + len("the dog")]])
    assert record["logprob"] == pytest.approx(-(whole - prompt), rel=1e-4)


def test_top_k_1_and_tiny_top_p_are_greedy(cli, four_run):
    greedy = cli("sample", "-c", four_run, "-n", 60, "--greedy", "a b")[1]
    assert cli("sample", "-c", four_run, "-n", 60, "--top-k", 1, "--seed", 9, "-t", "3", "a b")[1] == greedy
    assert cli("sample", "-c", four_run, "-n", 60, "--top-p", 0.01, "--seed", 9, "-t", "3", "a b")[1] == greedy


def test_top_k_and_top_p_restrict_the_choices():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]] * 4000))
    u = np.random.default_rng(0).random(4000)
    for opts, allowed in [(dict(top_k=2), {0, 1}), (dict(top_p=0.7), {0, 1}), (dict(top_p=0.5), {0}),
                          (dict(top_p=0.85), {0, 1, 2}), (dict(), {0, 1, 2, 3})]:
        chosen, logp = sample_mod._choose(logits, sample_mod.Options(**opts), u)
        assert set(chosen.tolist()) == allowed, opts
        np.testing.assert_allclose(logp, logits[np.arange(4000), chosen], rtol=1e-12)  # untruncated, T=1
    # with everything allowed, the frequencies follow the distribution
    freq = np.bincount(sample_mod._choose(logits, sample_mod.Options(), u)[0], minlength=4) / 4000
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.03)


def test_batched_generation_equals_one_prompt_at_a_time(cli, four_run):
    prompts = ["the cat", "a", "my fish swam in the ___.", "", "the dog lay on the rug.\nthe"]
    stdin = "".join(p.replace("\n", " ") + "\n" for p in prompts)
    together = cli("sample", "-c", four_run, "-n", 50, "--seed", 4, "--batch", 64, "-", stdin=stdin)
    alone = cli("sample", "-c", four_run, "-n", 50, "--seed", 4, "--batch", 1, "-", stdin=stdin)
    assert together == alone
    assert len(together[1].splitlines()) == len(prompts)


def test_sequences_in_a_batch_advance_independently():
    """The vectorised loop against a plain loop: each sequence alone, step by step, with its own
    stop condition, must give what the batch gives."""
    spec = model.Spec("lstm", 6, 8, 2)
    params = model.init_params(spec, np.random.default_rng(1))
    from charlstm.data import Vocab

    vocab = Vocab("\n abcd")
    prompts = ["ab", "dcba ca", "", "b___ d", "cc___"]
    opts = sample_mod.Options(length=25, temperature=0.9, until=("ad",))
    requests = [sample_mod.parse(p, i) for i, p in enumerate(prompts)]
    packed = model.pack(params)
    batch = sample_mod.generate(packed, vocab, requests, opts, seed=11)
    for r, res in zip(requests, batch):
        alone = sample_mod.generate(packed, vocab, [r], opts, seed=11)[0]
        assert (alone.text, alone.completion) == (res.text, res.completion)
        assert alone.logprob == pytest.approx(res.logprob, rel=1e-5)  # float32 GEMM vs GEMV rounding
    blank = batch[3]
    assert blank.text == "b" + blank.completion + " d" and " " not in blank.completion


def test_a_prompt_is_read_as_the_start_of_a_line():
    """A model trained on lines (data.mode lines) reads every line after a newline from the zero state;
    a prompt is read the same way, so "ab" and "\\nab" are the same prompt, and neither is "ab" read
    from the zero state alone. A vocabulary without a newline reads the prompt as it is."""
    from charlstm.data import Vocab

    spec = model.Spec("gru", 5, 8, 1)
    params = model.init_params(spec, np.random.default_rng(3))
    packed = model.pack(params)
    opts = sample_mod.Options(length=12, temperature=1.0)
    bare, lined = (sample_mod.generate(packed, Vocab("\n abc"), [sample_mod.parse(p)], opts, seed=2)[0]
                   for p in ("ab", "\nab"))
    assert lined.text == "\n" + bare.text and lined.completion == bare.completion
    assert lined.logprob == pytest.approx(bare.logprob, rel=1e-6)
    # the same ids, but character 0 is a tab: the prompt is read from the zero state alone
    no_newline = sample_mod.generate(packed, Vocab("\t abc"), [sample_mod.parse("ab")], opts, seed=2)[0]
    assert no_newline.text.startswith("ab") and no_newline.logprob != pytest.approx(bare.logprob, rel=1e-5)
    with pytest.raises(DataError, match="empty prompt"):
        sample_mod.generate(packed, Vocab("\t abc"), [sample_mod.parse("")], opts)


def test_unknown_characters(cli, four_run):
    code, out, err = cli("sample", "-c", four_run, "the ЖX cat")
    assert code == 1 and "'X' 'Ж'" in err and err.count("\n") == 1
    code, out, err = cli("sample", "-c", four_run, "--unknown", "skip", "--greedy", "-n", 5, "the ЖX cat")
    assert code == 0 and "warning: dropped characters not in the vocabulary: 'X' 'Ж'" in err
    assert out.startswith("the ЖX cat")
    code, out, err = cli("sample", "-c", four_run, "--until", "Ж", "-n", 5, "--seed", 1, "the")
    assert code == 0 and "--until 'Ж' holds characters the model never writes" in err


def test_bad_requests_are_one_line_errors(cli, four_run, tmp_path):
    for args, message in [(["___ and ___"], "one blank"), (["-t", "0", "x"], "Invalid value for '-t'"),
                          (["--top-p", "0", "x"], "Invalid value for '--top-p'"),
                          (["-c", tmp_path / "none", "x"], "no checkpoint"), (["x", "-"], "cannot be mixed"),
                          (["--num-samples", "0", "x"], "Invalid value for '--num-samples'")]:
        full = args if "-c" in args else ["-c", four_run, *args]
        code, out, err = cli("sample", *full)
        assert code != 0 and message in err and out == "", (args, err)


def test_writer_streams_the_first_unfinished_sequence():
    class Out:
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    out = Out()
    writer = Writer(out, live=True)
    requests = [sample_mod.parse("ab", 0), sample_mod.parse("x___y", 1)]
    on_step = writer.batch(requests)
    completions = [["", "c", "cd", "cd"], ["", "z", "z", "z"]]
    done = [[False, False, False, True], [False, False, True, True]]
    seen = []
    for t in range(4):
        on_step(lambda b, start: completions[b][t][start:], np.array([done[0][t], done[1][t]]))
        seen.append(out.text)
    assert seen == ["ab", "abc", "abcd", "abcd\nxzy\n"]
    writer.results([], seed=1)  # a live batch has already been written
    assert out.text == seen[-1]


def test_prompt_batches_do_not_wait_for_the_end_of_input():
    """A producer that writes two lines and keeps its pipe open still gets them answered."""
    import os

    r, w = os.pipe()
    os.write(w, "one\ntwo\r\nthr".encode())
    with os.fdopen(r, "rb", buffering=0) as stream:
        batches = prompt_batches(stream, 64)
        assert next(batches) == ["one", "two"]
        os.write(w, "ee\nfour".encode())
        os.close(w)
        assert list(batches) == [["three", "four"]]


@pytest.mark.slow
def test_pipeline_in_order_and_quiet_when_the_reader_leaves(four_run):
    prompts = [f"{s[:8]}" for s in FOUR] * 50
    code, out, err = run_cli("sample", "-c", four_run, "-n", 30, "--seed", 1, input="\n".join(prompts) + "\n")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert len(lines) == len(prompts)
    assert all(line.startswith(p) for line, p in zip(lines, prompts))
    # `| head -n 1`: the reader closes the pipe after one line
    proc = subprocess.Popen([sys.executable, "-m", "charlstm", "sample", "-c", str(four_run), "-n", "30"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(("\n".join(prompts * 20) + "\n").encode())
    proc.stdin.close()
    first = proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 0
    assert first and proc.stderr.read() == b""
    shell = subprocess.run(["bash", "-c", f"printf 'the\\nthe\\n%.0s' {{1..300}} | {sys.executable} -m charlstm "
                            f"sample -c {four_run} -n 20 | head -n 1; exit ${{PIPESTATUS[1]}}"],
                           capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0 and shell.stderr == "" and shell.stdout.startswith("the")

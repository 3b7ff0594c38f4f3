"""`charlstm sample`: completion, blanks, sampling controls, batching and shell pipelines."""

import json
import os
import select
import signal
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
    assert out == "\n\n".join([FOUR[0], FOUR[1], FOUR[3], FOUR[2]]) + "\n"  # a blank line between samples


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
    assert len(records) == 4 and all(r["prompt"] == "my fish" for r in records)
    assert [r["seed"] for r in records] == [3, 4, 5, 6]  # sample i: seed + i
    for r in records:
        assert r["completion"].endswith("bowl.") and r["completion"].count("bowl.") == 1
        assert r["text"] == "my fish" + r["completion"]
    code, out, _ = cli("sample", "-c", four_run, "-n", 17, "--seed", 3, "--format", "jsonl", "a")
    assert len(json.loads(out)["completion"]) == 17
    code, out, _ = cli("sample", "-c", four_run, "-n", 300, "--seed", 3, "--until", "\\n", "--format", "jsonl", "a")
    completion = json.loads(out)["completion"]  # --until reads \n as a newline, as --separator does
    assert completion.endswith("\n") and completion.count("\n") == 1
    code, out, _ = cli("sample", "-c", four_run, "-n", 17, "--greedy", "--format", "jsonl", "a", "b")
    assert [json.loads(line)["seed"] for line in out.splitlines()] == [None, None]  # no seed plays a part


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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # a decoder's logits, a pointer's log-probabilities
def test_one_sequence_chooses_as_it_would_in_a_batch(monkeypatch, dtype):
    """At batch 1, temperature 1 and no truncation, _choose takes a shorter path (_choose_one); it must
    give the very character and log-probability, to the bit and in the same dtype and shape, that the
    batched path gives that row. Rows include log-probabilities of -inf (a pointer's mixture can
    underflow) and ties."""
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((300, 65)) * 4).astype(dtype)
    logits[::7, :20] = -np.inf
    logits[::11] = 0.0  # a flat row: the uniform alone decides
    u = rng.random(300)
    u[:5] = [0.0, np.nextafter(1.0, 0.0), 0.5, 1e-12, 0.999999]  # ends of the interval
    u[[11, 22]] = 0.2, 0.4  # on a flat row's cumulative sum exactly (13 and 26 of 65): ties go left
    chosen, logp = sample_mod._choose(logits, sample_mod.Options(), u)
    real, taken = sample_mod._choose_one, []
    monkeypatch.setattr(sample_mod, "_choose_one", lambda *a: taken.append(1) or real(*a))
    for b in range(300):
        one_chosen, one_logp = sample_mod._choose(logits[b : b + 1], sample_mod.Options(), u[b : b + 1])
        assert one_chosen.tolist() == [chosen[b]], b
        assert one_logp.shape == (1,) and one_logp.dtype == logp.dtype
        assert one_logp.tobytes() == logp[b : b + 1].tobytes(), b
    assert len(taken) == 300  # the short path, every time


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
    from charlstm.vocab import Vocab

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
    from charlstm.vocab import Vocab

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
    code, out, err = cli("sample", "-c", four_run, "the cat", "the ЖX cat")
    assert code == 1 and "'X' 'Ж'" in err and err.count("\n") == 1 and out == ""
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


class FakeOut:
    def __init__(self):
        self.text, self.flushed = "", ""

    def write(self, s):
        self.text += s

    def flush(self):
        self.flushed = self.text


def test_writer_streams_the_first_unfinished_sample_and_keeps_the_order():
    """Sample 0 streams as it is made; sample 1, done first, waits for it, then goes out whole after
    the separator, with its blank filled."""
    from charlstm.vocab import Vocab

    vocab = Vocab("\n abcdxyz")
    ids = {c: i for i, c in enumerate(vocab.chars)}
    out = FakeOut()
    writer = Writer(out, vocab, separator="\n", tty=True)
    requests = [sample_mod.parse("ab", 0), sample_mod.parse("x___y", 1)]
    sink = writer.start(requests)
    seen = [out.text]
    # step: (chosen, kept, done); sample 1 keeps "z", then ends at a word boundary (" ", not kept)
    for chosen, keep, done in [("cz", [1, 1], [0, 0]), ("d ", [1, 0], [0, 1]), ("\na", [0, 0], [1, 1])]:
        sink.step(np.array([ids[c] for c in chosen]), np.array(keep, bool), np.array(done, bool), np.zeros(2))
        seen.append(out.text)
    writer.finish(np.zeros(2))
    assert seen == ["", "abc", "abcd", "abcd\n\nxzy\n"]  # nothing before the first step: a bad prompt writes nothing
    assert out.flushed == out.text


def test_writer_holds_later_samples_until_the_earlier_are_out_in_jsonl():
    from charlstm.vocab import Vocab

    vocab = Vocab("\nab")
    out = FakeOut()
    writer = Writer(out, vocab, fmt="jsonl", seed=10)
    requests = [sample_mod.parse("a", 4), sample_mod.parse("b", 5)]
    sink = writer.start(requests)
    sink.step(np.array([1, 2]), np.array([True, True]), np.array([False, True]), np.array([-1.0, -2.0]))
    assert out.text == ""  # sample 1 is done, but sample 0 is not
    sink.step(np.array([2, 0]), np.array([True, False]), np.array([True, True]), np.array([-3.0, -2.0]))
    records = [json.loads(line) for line in out.text.splitlines()]
    assert [(r["text"], r["logprob"], r["seed"]) for r in records] == [("aab", -3.0, 14), ("bb", -2.0, 15)]


def test_writer_flushes_a_pipe_at_newlines_and_every_quarter_second():
    from charlstm.vocab import Vocab

    vocab = Vocab("\nab")
    now = [0.0]
    out = FakeOut()
    sink = Writer(out, vocab, clock=lambda: now[0]).start([sample_mod.parse("", 0)])
    step = lambda c: sink.step(np.array([c]), np.array([True]), np.array([False]), np.zeros(1))  # noqa: E731
    step(1)
    now[0] = 0.1
    step(2)
    assert out.text == "ab" and out.flushed == ""  # not a terminal: no flush per character
    now[0] = 0.3
    step(1)
    assert out.flushed == "aba"  # a quarter of a second since the last
    step(0)
    assert out.flushed == "aba\n"  # a newline


def test_a_collector_holds_each_completion_across_chunks():
    from charlstm.vocab import Vocab

    vocab = Vocab("ab")
    collect = sample_mod.Collector(vocab, 3)
    rng = np.random.default_rng(0)
    ends = [0, 2500, 1024]  # sample b keeps its first ends[b] steps
    chosen = rng.integers(0, 2, (3000, 3))
    for t in range(3000):
        collect.step(chosen[t], np.array([t < e for e in ends]))
    collect.drop(1)
    assert [collect.text(b) for b in (0, 2)] == ["", vocab.decode(chosen[:1024, 2])]
    assert collect.parts[1] == []


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


# ------------------------------------------------------------------- streaming: memory, pipes, interrupts


def _start(*args):
    """`charlstm sample ARGS` with pipes, and Ctrl-C's default action even where pytest itself was started
    in the background by a non-interactive shell (which ignores SIGINT, and so would every child)."""
    env = {k: v for k, v in os.environ.items() if k != "CHARLSTM_DEBUG"}
    return subprocess.Popen([sys.executable, "-m", "charlstm", "sample", *map(str, args)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _read_until(proc, enough, wait=30):
    """What proc writes to stdout until enough(bytes so far); fails if it writes nothing for `wait` seconds
    (a bound against hanging, not a speed test: the first characters come within a second or two)."""
    data = b""
    while not enough(data):
        if not select.select([proc.stdout], [], [], wait)[0]:
            proc.kill()
            pytest.fail(f"no output for {wait} s after {data[-200:]!r}")
        chunk = os.read(proc.stdout.fileno(), 1 << 16)
        if not chunk:
            proc.wait(timeout=30)
            pytest.fail(f"stdout closed (exit {proc.returncode}) after {data[-200:]!r}; stderr: {proc.stderr.read()!r}")
        data += chunk
    return data


def _interrupt(proc):
    """SIGINT, then (the rest of stdout, stderr) as text."""
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    return rest, err.decode()


def _peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the peak memory from /proc")
def test_memory_does_not_grow_with_the_length(four_run):
    """-n 10**12 (with --until, which watches the end of the text) starts writing at once in a small
    process: nothing is reserved for the whole length (it was (B, length) arrays of ids and uniforms)."""
    proc = _start("-c", four_run, "-n", 10**12, "--seed", 1, "--until", "bowl.bowl.", "the")
    out = _read_until(proc, lambda d: len(d) >= 10_000)
    peak = _peak_rss_mb(proc.pid)
    rest, err = _interrupt(proc)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert peak < 200, f"peak RSS {peak:.0f} MB"  # about 50 MB: Python, NumPy and a small model
    assert out.startswith(b"the ")


def test_one_prompt_streams_to_a_pipe_and_an_interrupt_keeps_what_was_made(four_run):
    """`charlstm sample -n 1000000 | tee`: lines arrive as they are made; Ctrl-C stops with 130, no
    traceback, and what came out is the start of that seed's text."""
    proc = _start("-c", four_run, "-n", 10**6, "--seed", 5, "the")
    out = _read_until(proc, lambda d: d.count(b"\n") >= 3)
    rest, err = _interrupt(proc)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "Aborted."
    text = (out + rest).decode()
    assert text.count("\n") >= 3 and len(text) < 10**6
    code, whole, _ = run_cli("sample", "-c", four_run, "-n", len(text), "--seed", 5, "the")
    assert code == 0 and whole.startswith(text)


def test_batched_prompts_go_out_in_order_each_when_it_is_done(four_run):
    """Three prompts advance together; the first (a blank) is done at once and goes out while the second
    is still being written; the third, done early too, waits for the second."""
    proc = _start("-c", four_run, "-n", 10**6, "--seed", 2, "the cat sat on the ___.", "the dog",
                  "my fish swam in the ___.")
    out = _read_until(proc, lambda d: d.count(b"\n") >= 5)
    rest, err = _interrupt(proc)
    assert proc.returncode == 130, err
    text = (out + rest).decode()
    assert text.startswith("the cat sat on the mat.\n\nthe dog")
    assert "\n\n" not in text[len("the cat sat on the mat.\n\n"):]  # the third sample has not begun


def test_a_reader_that_leaves_stops_a_long_sample_quietly(four_run):
    shell = subprocess.run(["bash", "-c", f"{sys.executable} -m charlstm sample -c {four_run} -n {10**12} the "
                            f"| head -c 300; exit ${{PIPESTATUS[0]}}"], capture_output=True, timeout=60)
    assert shell.returncode == 0 and shell.stderr == b"" and len(shell.stdout) == 300


# -------------------------------------------------------------------------- separators, seeds, bad input


def test_samples_are_separated_and_batches_do_not_change_them(four_run):
    args = ["-c", four_run, "-n", 60, "--seed", 7, "-t", 1.5, "--num-samples", 3, "the", "a"]
    code, out, err = run_cli("sample", *args)
    assert code == 0, err
    samples = out.split("\n\n")  # the model never writes a blank line itself
    assert len(samples) == 6 and all(s.startswith(p) for s, p in zip(samples, ["the"] * 3 + ["a"] * 3))
    assert run_cli("sample", *args, "--batch", 1)[1] == out  # one sequence at a time: the same samples
    assert run_cli("sample", *args, "--separator", "---\\n")[1] == out.replace("\n\n", "\n---\n")
    assert run_cli("sample", *args, "--separator", "---")[1] == out.replace("\n\n", "\n---\n")  # a line of its own
    code, jsonl, _ = run_cli("sample", *args, "--format", "jsonl")
    records = [json.loads(line) for line in jsonl.splitlines()]
    assert [r["seed"] for r in records] == [7, 8, 9, 10, 11, 12]
    assert "\n\n".join(r["text"] for r in records) + "\n" == out


def test_num_samples_differ_and_each_is_reproduced_alone_by_its_seed(cli, four_run):
    code, out, err = cli("sample", "-c", four_run, "-n", 80, "--num-samples", 4, "--seed", 1, "the")
    assert code == 0, err
    samples = [s + "\n" for s in out[:-1].split("\n\n")]
    assert len(samples) == 4 and len(set(samples)) == 4
    for i, s in enumerate(samples):  # the jsonl seed of sample i is 1 + i
        assert cli("sample", "-c", four_run, "-n", 80, "--seed", 1 + i, "the")[1] == s


@pytest.mark.parametrize("args", [["-t", "nan"], ["-t", "inf"], ["--temperature", "NaN"], ["--top-p", "nan"],
                                  ["--top-p", "-inf"]])
def test_nan_and_infinity_are_refused(four_run, args):
    code, out, err = run_cli("sample", "-c", four_run, *args, "the")
    assert code == 2 and out == ""
    assert f"{args[1]!r} is not a finite number" in err and "Traceback" not in err


@pytest.mark.parametrize("args, said", [(["-t", "0"], "'-t' / '--temperature': 0 is not in the range x>0; "),
                                        (["--top-p", "0.0"], "'--top-p': 0 is not in the range 0<x<=1; ")])
def test_a_temperature_or_top_p_of_0_points_to_greedy(four_run, args, said):
    code, out, err = run_cli("sample", "-c", four_run, *args, "the")
    assert code == 2 and out == "" and f"{said}--greedy always takes the likeliest character." in err, err
    code, _, err = run_cli("sample", "-c", four_run, "-t", "-1", "the")  # other values: the range alone
    assert code == 2 and err.rstrip().endswith("-1.0 is not in the range x>0."), err


def test_every_float_option_of_every_command_refuses_nan():
    import click

    from charlstm.cli import cli as group
    from charlstm.cli.shared import FiniteFloat

    def options(command, path):
        for p in command.params:
            yield path, p
        for name, sub in getattr(command, "commands", {}).items():
            yield from options(sub, f"{path} {name}")

    floats = [(path, p.name) for path, p in options(group, "charlstm")
              if isinstance(p.type, click.types.FloatParamType) and not isinstance(p.type, FiniteFloat)]
    assert floats == []


def test_prompts_from_stdin_end_at_the_end_of_their_line_in_jsonl_too(four_run):
    """--format jsonl changes how the completions are written, not where they end: the same completions
    as the text output, each stopped at its line's end (jsonl ran on for all of --length)."""
    stdin = "the\na dog\n"
    code, text, err = run_cli("sample", "-c", four_run, "-n", 300, "--seed", 2, "-", input=stdin)
    assert code == 0, err
    code, jsonl, err = run_cli("sample", "-c", four_run, "-n", 300, "--seed", 2, "--format", "jsonl", "-", input=stdin)
    assert code == 0, err
    records = [json.loads(line) for line in jsonl.splitlines()]
    assert [r["text"] for r in records] == text.splitlines() and all("\n" not in r["completion"] for r in records)


def test_a_temperature_too_small_for_float32_samples_the_likeliest_without_a_warning(four_run):
    """-t 1e-300 divided the float32 logits by a float32 zero: a NumPy warning on stderr and NaN in the
    distribution."""
    code, out, err = run_cli("sample", "-c", four_run, "-n", 40, "--seed", 1, "-t", "1e-300", "the", "a dog")
    assert code == 0 and err == "", err
    assert out == run_cli("sample", "-c", four_run, "-n", 40, "--greedy", "the", "a dog")[1]


def test_an_empty_stdin_says_no_prompt_was_read(four_run):
    for args in [(), ("-",)]:
        code, out, err = run_cli("sample", "-c", four_run, *args, input="")
        assert code == 1 and out == "" and err.startswith("error: no prompt: stdin was empty"), err
        assert err.count("\n") == 1


def test_a_text_file_is_not_a_checkpoint(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("buy milk\n")
    code, out, err = run_cli("sample", "-c", notes, "the")
    assert code == 1 and out == ""
    assert err == f"error: {notes} is not a checkpoint (it looks like text, not an .npz zip archive); give a .npz " \
                  f"written by charlstm train, or its run directory\n"


def test_a_model_trained_on_lines_starts_each_generated_line_afresh(cli):
    """The shipped model read every story from the zero state (data.mode lines): after a newline it
    writes, sampling restarts the state, and the pointer's memory, as training did. So greedily, every
    line after the first is the line an empty prompt gives; carrying the state on wrote broken lines."""
    code, out, err = cli("sample", "--greedy", "-n", 400, "Alice walks")
    assert code == 0, err
    code, fresh, err = cli("sample", "--greedy", "-n", 150, "")
    assert code == 0, err
    first_fresh = fresh.split("\n")[0]
    later = out.split("\n")[1:-2]  # whole lines after the first (the last two may be cut)
    assert len(first_fresh) > 40 and later and all(line == first_fresh for line in later), out
    from charlstm import api

    for r in api.load().sample(["Alice walks", "Tom walks in", "Mady"], greedy=True, length=400):  # side by side
        assert r.completion.split("\n")[1:-1] and all(line == first_fresh for line in r.completion.split("\n")[1:-1])


def test_a_fill_cut_short_by_the_length_gets_a_note(cli, four_run):
    """'the cat sat on the ___.' fills 'mat'; with -n 2 the fill is 'ma', which the output cannot tell
    from an answer: a note on stderr says so. A fill that ends at its word boundary gets none."""
    code, out, err = cli("sample", "-c", four_run, "--greedy", "-n", 2, "the cat sat on the ___.")
    assert code == 0 and out.strip() == "the cat sat on the ma."
    assert "reached --length 2 before the blank's end" in err
    code, out, err = cli("sample", "-c", four_run, "--greedy", "-n", 20, "the cat sat on the ___.")
    assert out.strip() == "the cat sat on the mat." and "note" not in err

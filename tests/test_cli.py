"""The command line's promises that belong to no one command: an internal error, and README's code."""

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from charlstm import checkpoint, config, model, stepwise
from conftest import ROOT

BROKEN = """
import sys
import charlstm.checkpoint

def broken(path):
    raise ZeroDivisionError("a bug")

charlstm.checkpoint.read = broken  # a bug inside the library, as a user would meet one
from charlstm.cli import main
sys.argv = ["charlstm", "sample", "the"]
main()
"""


def _run_broken(debug):
    env = {k: v for k, v in os.environ.items() if k != "CHARLSTM_DEBUG"}
    if debug:
        env["CHARLSTM_DEBUG"] = "1"
    proc = subprocess.run([sys.executable, "-c", BROKEN], capture_output=True, text=True, timeout=60, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def test_an_internal_error_is_one_line_and_exit_70_with_the_traceback_only_under_charlstm_debug():
    code, out, err = _run_broken(debug=False)
    assert code == 70 and out == ""
    assert err == ("error: internal error (ZeroDivisionError: a bug); please report it, with the traceback that "
                   "CHARLSTM_DEBUG=1 prints\n")
    code, out, err = _run_broken(debug=True)
    assert code == 1 and "Traceback (most recent call last)" in err and "in broken" in err
    assert err.rstrip().endswith("ZeroDivisionError: a bug")


def readme_pytorch_snippet():
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Use a checkpoint in PyTorch")[1]
    return re.search(r"```python\n(.*?)```", section.split("\n## ")[0], re.S).group(1)


def test_the_readme_pytorch_snippet_reads_a_checkpoint_without_pickle():
    code = readme_pytorch_snippet()
    assert 'np.load("runs/my-novel/best.npz", allow_pickle=False)' in code and "p_next" in code


def test_the_readme_pytorch_snippet_names_the_file_and_prompt_it_is_run_with():
    """The two strings the tests below replace are still in README's snippet (so a rewrite of it cannot
    leave them running something else)."""
    code = readme_pytorch_snippet()
    assert "runs/my-novel/best.npz" in code and '"\\nThe"' in code and "model[cell](x[:, None])" in code


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="PyTorch is not installed; README's loading snippet needs it (pip install torch)")
def test_the_closed_worlds_model_fills_the_article_blank_in_pytorch_with_the_readme_snippet():
    """README's snippet on data/rooms-closed.npz (an LSTM without a pointer, which the snippet leaves out)
    builds an nn.LSTM and loads its state_dict; PyTorch's own greedy decoding after the article's first
    story writes its answer, Monica."""
    import torch

    prompt = "Mady walks in to the room, Monica also walks in to the room. Mady said hi to "
    code = readme_pytorch_snippet().replace("runs/my-novel/best.npz", str(ROOT / "data" / "rooms-closed.npz"))
    namespace = {}
    exec(code.replace('"\\nThe"', repr("\n" + prompt)), namespace)
    lstm, decoder, vocab = namespace["model"]["lstm"], namespace["model"]["decoder"], namespace["vocab"]
    assert type(lstm) is torch.nn.LSTM and vocab[int(namespace["p_next"].argmax())] == "M"
    text = prompt
    with torch.no_grad():
        while not text.endswith("."):
            x = torch.nn.functional.one_hot(torch.tensor([vocab.index(c) for c in "\n" + text]), len(vocab))
            out, _ = lstm(x.float()[:, None])
            text += vocab[int(decoder(out[-1, 0]).argmax())]
            assert len(text) < len(prompt) + 20, text
    assert text == prompt + "Monica."


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="PyTorch is not installed; README's loading snippet needs it (pip install torch)")
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_the_readme_pytorch_snippet_gives_charlstms_probabilities(tmp_path, cell):
    """README's snippet, run as written on a checkpoint of each cell: the module it builds loads the arrays
    and predicts the character after "The" as charlstm does."""
    spec = model.Spec(cell, 9, 6, 2)
    rng = np.random.default_rng(1)
    params = model.init_params(spec, rng)
    params = {k: v * 3 for k, v in params.items()}  # larger weights: predictions far from uniform
    cfg = config.Config()
    cfg.model.cell, cfg.model.hidden, cfg.model.layers = cell, 6, 2
    vocab = list("\n Tabehrx")
    meta = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "vocab": vocab, "config": config.to_dict(cfg),
            "step": 1}
    path = tmp_path / "best.npz"
    checkpoint.write(path, params, meta)
    namespace = {}
    exec(readme_pytorch_snippet().replace("runs/my-novel/best.npz", str(path)), namespace)

    packed = model.pack(checkpoint.load(path).params)
    state = model.zero_state(spec, 1, np.float32)
    stepper = stepwise.Stepper(packed, state)
    for c in "\nThe":
        logits = stepper.step(np.array([vocab.index(c)]))[0].astype(np.float64)
    ours = np.exp(logits - logits.max())
    np.testing.assert_allclose(namespace["p_next"].detach().numpy(), ours / ours.sum(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("command", [(), ("train",), ("sample",), ("eval",), ("inspect",), ("corpus",),
                                     ("corpus", "rooms"), ("corpus", "pysource"), ("plot",)])
def test_help_fits_an_80_column_terminal(cli, monkeypatch, command):
    """Click wraps prose to the terminal but not the examples' literal blocks; those are kept short."""
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = cli(*command, "--help")
    assert code == 0
    assert [line for line in out.splitlines() if len(line) > 80] == []

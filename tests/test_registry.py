"""Cells and optimizers are registered in one place each: one registered from a test works everywhere."""

import json

import numpy as np

import elman
from charlstm import checkpoint
from charlstm.cells import CELLS
from conftest import CONFIGS

TINY = CONFIGS / "tiny.yaml"


def test_a_fourth_cell_trains_samples_scores_and_inspects(cli, corpus, tmp_path, monkeypatch):
    """A cell is one module and one registry line: registered here, the vanilla RNN's maths under the name
    elman goes through train, sample, eval and inspect, and gives the rnn cell's numbers bit for bit."""
    monkeypatch.setitem(CELLS, "elman", elman)
    opts = ["--config", TINY, "-q", "--set", "train.workers=1"]  # worker processes would not know the cell
    runs = {}
    for cell in ("elman", "rnn"):
        runs[cell] = tmp_path / cell
        code, _, err = cli("train", corpus, *opts, "--out", runs[cell], "--set", f"model.cell={cell}")
        assert code == 0, err
    ckpt, reference = checkpoint.load(runs["elman"]), checkpoint.load(runs["rnn"])
    assert ckpt.spec.cell == "elman" and "elman.weight_hh_l0" in ckpt.params
    for name, a in reference.params.items():
        np.testing.assert_array_equal(ckpt.params[name.replace("rnn.", "elman.")], a, err_msg=name)

    outputs = {}
    for cell, run in runs.items():
        code, out, err = cli("sample", "-c", run, "The", "-n", 40, "--seed", 3)
        assert code == 0, err
        code, scored, err = cli("eval", "-c", run, corpus, "--format", "json")
        assert code == 0, err
        outputs[cell] = out, json.loads(scored)
    assert outputs["elman"] == outputs["rnn"] and outputs["elman"][0].startswith("The")

    code, out, err = cli("inspect", "-c", runs["elman"], "the quick brown fox", "--top", 2, "--color", "never")
    assert code == 0, err
    assert "surprisal" in out and "hidden state, layer 0 unit" in out
    code, _, err = cli("inspect", "-c", runs["elman"], "the fox", "--show", "forget")
    assert code == 1 and "cannot show 'forget'" in err
    code, _, err = cli("train", corpus, *opts, "--out", tmp_path / "chrono", "--set", "model.cell=elman",
                       "--set", "model.chrono=50")
    assert code == 1 and "model.chrono needs a gated cell (lstm or gru)" in err


def test_a_cell_must_be_registered(cli, corpus):
    code, _, err = cli("train", corpus, "--config", TINY, "--set", "model.cell=elman")
    assert code == 1 and "model.cell must be one of lstm, gru, rnn, not 'elman'" in err

"""Cells and optimizers are registered in one place each: one registered from a test works everywhere."""

import json

import numpy as np

import elman
from charlstm import checkpoint
from charlstm.cells import CELLS
from charlstm.optim import MOMENTUM, OPTIMIZERS, Rule
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


class Signum(Rule):
    """sign-SGD with momentum (Bernstein et al. 2018), for tests only: b ← μb + (1-μ)g;  θ ← θ - η sign(b).
    It declares only options the registry has already (momentum), so the config needs no new key."""

    name, label = "signum", "Signum"
    options = (MOMENTUM,)
    frozen = ("momentum",)

    def slots(self):
        return ("momentum_buffer",)

    def step(self, p, g, s, lr, t):
        b = s["momentum_buffer"]
        b *= self.config.momentum
        b += (1 - self.config.momentum) * g
        p -= lr * np.sign(b)


def test_an_optimizer_registered_from_outside_trains_saves_and_resumes(cli, corpus, tmp_path, monkeypatch):
    """An optimizer is one class and one registry line: registered here, it is a valid optim.name, its
    slots go into the checkpoint, a resumed run continues it bit for bit, and what shapes its state is
    frozen on resume."""
    monkeypatch.setitem(OPTIMIZERS, "signum", Signum)
    opts = ["--config", TINY, "-q", "--set", "optim.name=signum", "--set", "optim.momentum=0.9",
            "--set", "optim.lr=0.001"]
    assert cli("train", corpus, *opts, "--out", tmp_path / "straight")[0] == 0
    assert cli("train", corpus, *opts, "--out", tmp_path / "split", "--steps", 15)[0] == 0
    code, _, err = cli("train", "--resume", tmp_path / "split", "--set", "optim.name=adam")
    assert code == 1 and "optim.name cannot change when resuming" in err
    code, _, err = cli("train", "--resume", tmp_path / "split", "--steps", 40, "-q")
    assert code == 0, err
    a, meta = checkpoint.read(tmp_path / "straight" / "latest.npz")
    b, _ = checkpoint.read(tmp_path / "split" / "latest.npz")
    assert meta["config"]["optim"]["name"] == "signum" and "optim.momentum_buffer.decoder.bias" in a
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)

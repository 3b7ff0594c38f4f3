"""Which checkpoint `-c RUN_DIR` hands out: the one of best.npz and latest.npz whose weights scored the
lower validation loss, with a note saying which and why (issue 18, item 1)."""

import json
import shutil

import numpy as np
import pytest

from charlstm import checkpoint, config, model
from conftest import CONFIGS, run_cli

TINY = CONFIGS / "tiny.yaml"


def write(path, step, **meta):
    spec = model.Spec("lstm", 3, 2, 1)
    cfg = config.Config()
    cfg.model.hidden, cfg.model.layers = 2, 1
    meta = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "vocab": list("abc"),
            "config": config.to_dict(cfg), "step": step, **meta}
    checkpoint.write(path, model.init_params(spec, np.random.default_rng(step)), meta)


@pytest.mark.parametrize("best, latest, chosen, why", [
    # the run: resumed, stopped by a time budget before its next validation
    ({"step": 500, "val_loss": 0.7427}, {"step": 962, "val_loss": 0.4392}, "latest.npz",
     "(step 962, validation loss 0.4392): its validation loss is lower than best.npz's (0.7427 at step 500)"),
    ({"step": 500, "val_loss": 0.7}, {"step": 962, "val_loss": 0.8}, "best.npz",
     "(step 500, validation loss 0.7000): the lowest validation loss; latest.npz (step 962) has 0.8000"),
    ({"step": 500, "val_loss": 0.7}, {"step": 700, "val_loss": None}, "best.npz",
     "latest.npz (step 700) has no validation at its step"),
    ({"step": 40, "val_loss": 0.7}, {"step": 40, "val_loss": 0.7}, "best.npz", None),  # the same: no note
    # written before checkpoints recorded val_loss: best.npz's best_val is its own, latest's unknown
    ({"step": 500, "best_val": 0.7, "best_step": 500}, {"step": 962, "best_val": 0.7, "best_step": 500,
                                                         "last_val": 0.4}, "best.npz", "(step 500, validation loss 0.7000)"),
])
def test_the_run_directory_gives_the_checkpoint_with_the_lower_validation_loss(tmp_path, best, latest, chosen, why):
    write(tmp_path / "best.npz", **best)
    write(tmp_path / "latest.npz", **latest)
    path, reason = checkpoint.choose(tmp_path)
    assert path == tmp_path / chosen and checkpoint.load(tmp_path).path == path
    assert reason is None if why is None else reason.startswith(f"using {path} ") and why in reason
    assert "\n" not in (reason or "")


def test_one_checkpoint_alone_or_an_unreadable_one(tmp_path):
    write(tmp_path / "latest.npz", 7, val_loss=None)
    assert checkpoint.choose(tmp_path) == (tmp_path / "latest.npz",
                                           f"using {tmp_path / 'latest.npz'} (step 7): the run has no best.npz")
    (tmp_path / "best.npz").write_bytes(b"not a zip")
    path, reason = checkpoint.choose(tmp_path)
    assert path == tmp_path / "latest.npz" and "best.npz is unreadable" in reason
    assert checkpoint.choose(tmp_path / "latest.npz") == (tmp_path / "latest.npz", None)  # a file: as given


def test_sample_eval_and_inspect_say_which_checkpoint_of_a_run_they_load(tmp_path):
    """A run directory as an older charlstm left it after a stop: best.npz from an early validation,
    latest.npz better. -c RUN_DIR scores latest.npz and says so on stderr."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"the {w} sat on the mat.\n" for w in ["cat", "dog", "bird"] * 300))
    run = tmp_path / "run"
    opts = ["--config", TINY, "-q", "--set", "train.eval_every=10"]
    assert run_cli("train", corpus, *opts, "--out", run, "--steps", 10)[0] == 0
    shutil.copy(run / "best.npz", tmp_path / "early.npz")
    assert run_cli("train", "--resume", run, "--steps", 60, "-q")[0] == 0
    shutil.copy(tmp_path / "early.npz", run / "best.npz")

    def score(path):
        code, out, err = run_cli("eval", "-c", path, corpus, "--format", "json")
        assert code == 0, err
        return json.loads(out)["nats_per_char"], err

    best, _ = score(run / "best.npz")
    latest, _ = score(run / "latest.npz")
    assert latest < best - 0.1
    chosen, err = score(run)
    assert err.startswith(f"note: using {run / 'latest.npz'} (step 60, validation loss "), err
    assert "its validation loss is lower than best.npz's" in err and err.count("\n") == 1
    assert chosen == latest
    code, out, err = run_cli("eval", "-c", run, corpus, "--format", "json", "-q")  # errors only: no note
    assert code == 0 and err == "" and json.loads(out)["nats_per_char"] == latest
    for command in (["sample", "-c", run, "--seed", "1", "-n", "5", "the"], ["inspect", "-c", run, "the cat"]):
        code, _, err = run_cli(*command)
        assert code == 0 and f"note: using {run / 'latest.npz'}" in err, err

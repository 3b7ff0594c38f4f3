"""`charlstm train --init-from`: the checkpoint's model, the union of the vocabularies, a fresh optimizer
and schedule, and README's worked example at a small size."""

import json
import pathlib
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import yaml

from charlstm import checkpoint
from charlstm.optim import learning_rate
from conftest import CONFIGS, ROOT, make_text

TINY = CONFIGS / "tiny.yaml"
SHAKESPEARE = ROOT.parent / "shared" / "corpora" / "tinyshakespeare.txt"  # ../shared/corpora from the repo


@pytest.fixture
def base(cli, corpus, tmp_path):
    """A tiny LSTM of 24 units (the tiny preset has 16) trained 20 steps on the test corpus."""
    run = tmp_path / "base"
    code, _, err = cli("train", corpus, "--config", TINY, "--set", "model.hidden=24", "--out", run, "-q",
                       "--steps", 20)
    assert code == 0, err
    return run


@pytest.fixture
def numbered(tmp_path):
    """New text with characters the base lacks, the lines numbered in braces ({1} to {N}), and without
    one it has, the full stop."""
    path = tmp_path / "numbered.txt"
    lines = make_text(seed=5).replace(".", "").splitlines()
    path.write_text("".join(f"{{{n}}} {line}\n" for n, line in enumerate(lines, 1)))
    return path


def test_init_from_takes_the_model_from_the_checkpoint_and_adds_the_new_characters(cli, base, numbered, tmp_path):
    code, _, err = cli("train", numbered, "--init-from", base, "--config", "tiny", "--out", tmp_path / "ft",
                       "--steps", 2)
    assert code == 0, err
    cfg = yaml.safe_load((tmp_path / "ft" / "config.yaml").read_text())
    assert (cfg["model"]["cell"], cfg["model"]["hidden"], cfg["model"]["layers"]) == ("lstm", 24, 1)
    assert cfg["model"]["init_from"] == str(base)
    assert "note: model.hidden is 24, the checkpoint's, not 16 (preset tiny)" in err
    old = checkpoint.load(base).vocab.chars
    new = checkpoint.load(tmp_path / "ft" / "latest.npz").vocab.chars
    added = sorted(set(numbered.read_text()) - set(old))
    assert new == sorted(set(old) | set(added)) and len(added) == 12  # the ten digits and the braces
    assert "." in new and "." not in numbered.read_text()  # the union: kept from the checkpoint
    assert f"the new text adds 12 characters to its {len(old)} ('0' '1' '2' '3' '4' and 7 more)" in err
    source, origin = checkpoint.load(base), checkpoint.load(tmp_path / "ft" / "latest.npz").meta["init_from"]
    assert origin == {"path": str(source.path), "step": 20, "config": source.meta["config"],
                      "corpus_sha256": source.meta["corpus"]["sha256"]}  # the model it came from, traceable


def test_a_set_that_conflicts_with_the_checkpoint_is_one_line_and_creates_nothing(cli, base, numbered, tmp_path):
    for setting, key in (("model.hidden=32", "model.hidden=32"), ("model.cell=gru", "model.cell=gru"),
                         ("model.layers=2", "model.layers=2")):
        code, out, err = cli("train", numbered, "--init-from", base, "--set", setting, "--out", tmp_path / "bad",
                             "--config", "tiny", "--steps", 1)
        assert code == 1 and out == "" and err.count("\n") == 1, err
        assert err.startswith(f"error: {key} (--set) conflicts with model.init_from: ") and "Traceback" not in err
    assert not (tmp_path / "bad").exists()
    code, _, err = cli("train", numbered, "--init-from", tmp_path / "nowhere", "--out", tmp_path / "bad")
    assert (code, err) == (1, f"error: model.init_from: no checkpoint or run directory at {tmp_path / 'nowhere'}\n")
    code, _, err = cli("train", "--resume", base, "--init-from", base)
    assert code == 2 and "--init-from starts a new run" in err


def test_the_optimizer_and_the_schedule_start_afresh(cli, base, numbered, tmp_path):
    """The base ran 20 steps of the tiny preset's schedule; the fine-tuned run's first rate is its own
    schedule's at step 0, and Adam's two moments both started from zero: after one step m = (1 - b1) g and
    v = (1 - b2) g^2, so m^2 / v = (1 - b1)^2 / (1 - b2) wherever g is not 0 (moments carried over would
    break that)."""
    warmup = ["--set", "optim.schedule=cosine", "--set", "optim.warmup=10", "--set", "train.log_every=1"]
    code, _, err = cli("train", numbered, "--init-from", base, "--config", TINY, "--out", tmp_path / "ft", "-q",
                       "--steps", 1, *warmup)
    assert code == 0, err
    ckpt = checkpoint.load(tmp_path / "ft" / "latest.npz")
    first = json.loads((tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 1 and first["lr"] == pytest.approx(learning_rate(ckpt.config.optim, 0, 0, 1))
    assert first["lr"] == pytest.approx(ckpt.config.optim.lr / 10)
    b1, b2 = ckpt.config.optim.betas
    for name in ("lstm.weight_hh_l0", "decoder.weight"):
        m, v = ckpt.optim[f"exp_avg.{name}"], ckpt.optim[f"exp_avg_sq.{name}"]
        moved = v > 1e-20
        assert moved.mean() > 0.5
        np.testing.assert_allclose(m[moved] ** 2 / v[moved], (1 - b1) ** 2 / (1 - b2), rtol=1e-3)


def test_a_fine_tuned_run_resumes_with_its_vocabulary(cli, base, numbered, tmp_path):
    """The vocabulary holds characters of the checkpoint that the new text lacks: a resume rebuilds it."""
    ft = tmp_path / "ft"
    assert cli("train", numbered, "--init-from", base, "--config", TINY, "--out", ft, "-q", "--steps", 2)[0] == 0
    code, _, err = cli("train", "--resume", ft, "--steps", 4, "-q")
    assert code == 0, err
    resumed = checkpoint.load(ft / "latest.npz")
    assert resumed.step == 4 and resumed.meta["init_from"]["step"] == 20  # the origin survives a resume


def readme_fine_tune_commands():
    """The shell lines of README's Fine-tune example (the block after <!-- fine-tune-example -->)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- fine-tune-example -->", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines()[1:] if line.strip() and not line.startswith("#")]


SMALL = {r"--steps \d+": "--steps 6", r"model\.hidden=\d+": "model.hidden=16", r"head -c \d+": "head -c 20000",
         r"tail -c \+\d+": "tail -c +30000", r"NR <= \d+": "NR <= 150", r"eval_every=\d+": "eval_every=3"}


@pytest.mark.skipif(not SHAKESPEARE.exists(), reason=f"Tiny Shakespeare is not at {SHAKESPEARE}")
def test_readme_fine_tune_example_runs_at_a_small_size(tmp_path):
    """README's commands, verbatim but for the sizes (SMALL), run from a directory beside shared/ as
    README's ../shared/corpora path expects: the fine-tuned run says what it added, and its model reads
    and writes the braces and digits the first model lacked."""
    lines = readme_fine_tune_commands()
    script = "\n".join(lines)
    for pattern, small in SMALL.items():
        script, n = re.subn(pattern, small, script)
        assert n, f"README's fine-tune example has no {pattern}"
    charlstm = f"{shlex.quote(sys.executable)} -m charlstm"
    script = re.sub(r"(^|\| |&& )charlstm ", lambda m: m.group(1) + charlstm + " ", script, flags=re.M)
    repo = tmp_path / "repo"  # where README's commands run: ../shared/corpora/ is beside it
    (tmp_path / "shared" / "corpora").mkdir(parents=True)
    (tmp_path / "shared" / "corpora" / "tinyshakespeare.txt").symlink_to(SHAKESPEARE)
    repo.mkdir()
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=repo, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"note: fine-tuning \S+ \(step 6; LSTM, 1 layer of 16 units\): the new text adds \d+ characters",
                     proc.stderr), proc.stderr
    runs = sorted(p.name for p in (repo / "runs").iterdir())
    assert len(runs) == 3, runs
    tuned = [c for c in (checkpoint.load(repo / "runs" / r) for r in runs) if c.config.model.init_from]
    assert len(tuned) == 1 and {"{", "}", "7"} <= set(tuned[0].vocab.chars)

"""Presets (`--config shakespeare`) shipped in the package, `train --help` and `train --dry-run`
(issue 18, items 8 and 9)."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from charlstm import config, model, presets
from conftest import CONFIGS, ROOT, run_cli

SHIPPED = sorted(p.stem for p in CONFIGS.glob("*.yaml"))


def test_every_config_file_is_a_preset():
    assert presets.names() == SHIPPED
    for name in SHIPPED:
        path, label = presets.locate(name)
        assert path.read_bytes() == (CONFIGS / f"{name}.yaml").read_bytes() and label == f"preset {name}"


def test_a_preset_by_name_away_from_the_checkout(cli, corpus, tmp_path):
    code, _, err = cli("train", corpus, "--config", "tiny", "--out", tmp_path / "run", "-q", "--steps", 3)
    assert code == 0, err
    from charlstm import checkpoint

    assert checkpoint.load(tmp_path / "run" / "latest.npz").config.model.hidden == 16
    code, _, err = cli("train", corpus, "--config", "shakespear")
    assert code == 1 and f"no preset or file named 'shakespear' (presets: {', '.join(SHIPPED)})" in err
    code, _, err = cli("train", corpus, "--config", "configs/shakespeare.yaml")  # README's form, elsewhere
    assert code == 1 and "no such file" in err and "named without a path" in err
    (tmp_path / "tiny").write_text("model:\n  hidden: 12\n")  # a file of that name wins over the preset
    assert cli("train", corpus, "--config", "tiny", "--dry-run")[1].count("hidden: 12") == 1


def test_a_plain_install_copies_every_preset_and_asset(tmp_path):
    """What a non-editable `pip install .` puts in the package: setuptools' build_py on a copy of the
    project follows the symbolic links of charlstm/assets/ and copies the files they point to; and every
    module of the package, subpackages (cli/, cells/) included, as pyproject.toml lists them."""
    setuptools = pytest.importorskip("setuptools")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "charlstm", src / "charlstm", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("configs", "data"):
        os.symlink(ROOT / name, src / name)
    subprocess.run([sys.executable, "-W", "ignore", "-c", "from setuptools import setup; setup()", "-q", "build_py",
                    "--build-lib", str(tmp_path / "lib")], cwd=src, check=True, capture_output=True)
    built = tmp_path / "lib"
    modules = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "charlstm").rglob("*.py"))
    assert sorted(str(p.relative_to(built)) for p in (built / "charlstm").rglob("*.py")) == modules
    assets = tmp_path / "lib" / "charlstm" / "assets"
    copied = sorted(p.stem for p in (assets / "presets").glob("*.yaml"))
    assert copied == SHIPPED, setuptools.__version__
    for p in [*(assets / "presets").iterdir(), *(assets.glob("rooms*"))]:
        assert p.is_file() and not p.is_symlink(), p
    assert {p.name for p in assets.glob("rooms*")} == {"rooms-names-train.txt", "rooms-cloze-realnames.tsv",
                                                             "rooms.npz"}


def test_train_help_lists_presets_examples_and_the_defaults(cli):
    code, out, _ = cli("train", "--help")
    assert code == 0
    flat = re.sub(r"-\s+", "-", " ".join(out.split()))  # the help wraps lines after a hyphen too
    assert f"A preset ({', '.join(SHIPPED)}: the files of configs/) or a YAML file" in flat
    c = config.Config()
    assert (f"an {c.model.cell.upper()} of {c.model.layers} layers of {c.model.hidden} units, "
            f"{c.train.steps:,} steps") in flat
    for example in ("charlstm train my-novel.txt", "--config shakespeare", "--set model.hidden=512",
                    "charlstm train --resume runs/my-novel", "--dry-run"):
        assert example in out
    assert "charlstm train --resume runs/my-novel --steps 20000" in out  # examples keep their lines


def test_dry_run_shows_the_config_with_origins_the_sizes_and_the_speed_and_creates_nothing(tmp_path, corpus):
    val = tmp_path / "val.txt"
    val.write_text(corpus.read_text()[:3000])
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_cli("train", corpus, "--val", val, "--config", "tiny", "--steps", 1000, "--set", "optim.lr=0.005",
                             "--dry-run")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no runs/, nothing else
    lines = out.splitlines()

    def origin(key):
        return next(line for line in lines if line.strip().startswith(f"{key}:")).split("# ")[-1]

    assert origin("hidden") == "preset tiny" and origin("steps") == "flag" and origin("lr") == "--set"
    assert origin("betas") == "default" and origin("cell") == "preset tiny"
    text = corpus.read_text()
    vocab = sorted(set(text) | set(val.read_text()))
    V, H = len(vocab), 16
    params = 4 * H * (V + H) + 2 * 4 * H + V * H + V  # one LSTM layer (two biases) and the decoder
    assert params == sum(int(np.prod(s)) for s in model.param_shapes(model.Spec("lstm", V, H, 1)).values())
    assert f"corpus      1 file: {len(text):,} characters for training, 3,000 for validation, in {val}" in out
    assert f"vocabulary  {len(vocab)} characters" in out
    assert f"model       LSTM, 1 layer of 16 units: {params:,} parameters" in out
    speed = next(line for line in lines if line.startswith("speed"))
    assert "per 1,000 steps" in speed and "steps timed" in speed
    assert "nothing was created" in out
    code, out, err = run_cli("train", corpus, "--config", "tiny", "--dry-run", "--set", "model.hiden=3")
    assert code == 1 and "unknown config key model.hiden" in err  # checked like a run


@pytest.mark.parametrize("total, step, every, count", [(1500, 0, 250, 6), (1500, 100, 250, 6), (1500, 250, 250, 5),
                                                       (1000, 0, 300, 4), (1000, 950, 300, 1), (1500, 1500, 250, 0)])
def test_the_dry_run_counts_the_validations_left(total, step, every, count):
    """Multiples of `every` after the step, and the last step (validated whether or not it is one)."""
    from charlstm import dryrun

    assert dryrun.scheduled(total, step, every) == count

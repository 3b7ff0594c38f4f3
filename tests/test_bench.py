"""bench/, as its README promises: every script documented by its --help, results in one folder in one
format. Nothing is measured: the scripts are only asked for their help."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT

BENCH = ROOT / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py"))


def test_bench_has_its_scripts():
    assert {"runner.py", "timing.py", "speed.py", "speed_train.py", "names.py", "levers.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_says_what_it_does_in_its_help(name):
    """--help prints the script's docstring (its first sentence at least), without PyTorch, matplotlib or
    threadpoolctl, and exits 0; so does a shared module asked for its help."""
    proc = subprocess.run([sys.executable, str(BENCH / name), "--help"], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    first_line = (BENCH / name).read_text().split('"""')[1].splitlines()[0].strip()
    assert first_line and first_line[:40] in proc.stdout, proc.stdout


def test_results_are_json_files_that_read():
    files = sorted((BENCH / "results").iterdir())
    assert files and all(p.suffix == ".json" for p in files), [p.name for p in files if p.suffix != ".json"]
    for path in files:
        json.loads(path.read_text())

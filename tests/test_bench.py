"""bench/, as its README promises: every script documented by its --help, results in one folder in one
format. Nothing is measured: the scripts are only asked for their help."""

import ast
import importlib
import json
import os
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


# ---------------------------------------------------------------- the host every speed figure is recorded with

XEON = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Platinum 8488C
flags\t\t: fpu sse sse2 avx avx2 avx512f avx512bw amx_bf16 amx_tile amx_int8

processor\t: 1
vendor_id\t: GenuineIntel
model name\t: not the first processor
flags\t\t: fpu
"""
EPYC = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 23\nmodel\t\t: 1\nmodel name\t: AMD EPYC\n" \
       "flags\t\t: fpu avx avx2 fma\n"
ROW = {"config": "S", "H": 128, "L": 1, "B": 32, "T": 64, "train_chars_per_s": 1000, "torch_train_chars_per_s": None,
       "train_ratio": None, "gemm_bound_chars_per_s": 2000, "gemm_fraction": 0.5, "torch_gemm_fraction": None,
       "train_workers": 2, "sample_b1_chars_per_s": 10, "eval_chars_per_s": 20}


@pytest.fixture
def bench(monkeypatch):
    """import_module for the bench's modules, found as its scripts find each other (bare names, from bench/)."""
    monkeypatch.syspath_prepend(str(BENCH))
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # some shells set them; the record would say so
        monkeypatch.delenv(var, raising=False)
    return importlib.import_module


class FakeRunner:
    """speed.Runner without children: every probe answers what a child on a 2-thread OpenBLAS would."""

    def __init__(self, a):
        self.a, self.env, self.errors = a, {}, []

    def run(self, what, part, args, env=None):
        return {"charlstm": str(ROOT / "charlstm"), "numpy": "2.4.6", "blas": "openblas 0.3.31",
                "blas_kernel": "Haswell", "blas_threads": 2, "torch": None}


def run_record(bench):
    speed = bench("speed")
    return speed.probe_environment(FakeRunner(speed.parse_args(["--no-torch", "--threads", "2"])))


def test_cpu_reads_the_model_family_and_vector_flags(tmp_path, bench):
    runner = bench("runner")
    for text, want in [(XEON, {"model_name": "Intel(R) Xeon(R) Platinum 8488C", "vendor": "GenuineIntel", "family": 6,
                               "model": 143, "avx2": True, "avx512f": True, "amx_tile": True}),
                       (EPYC, {"model_name": "AMD EPYC", "family": 23, "model": 1, "avx2": True, "avx512f": False,
                               "amx_tile": False})]:
        (tmp_path / "cpuinfo").write_text(text)
        c = runner.cpu(tmp_path / "cpuinfo")
        assert {k: c[k] for k in want} == want
        assert c["cores"] == os.cpu_count()
    assert runner.cpu_kind(c) == "AMD EPYC (family 23, model 1): avx2, no avx512f, no amx_tile"
    unknown = runner.cpu(tmp_path / "none")  # no /proc/cpuinfo: flags unknown, not absent
    assert unknown["model_name"] and unknown["avx512f"] is None and "avx512f unknown" in runner.cpu_kind(unknown)


def test_the_run_record_and_the_kernel_line_name_the_cpu(bench):
    """speed.py's run record (in every configuration's JSON line) holds runner.cpu(), and the kernel line it
    prints names the CPU's model, family, model, flags and cores."""
    runner, speed = bench("runner"), bench("speed")
    run = run_record(bench)
    assert run["cpu"] == runner.cpu()
    assert json.loads(json.dumps(run))["cpu"]["model_name"] == runner.cpu()["model_name"]
    lines, _ = speed.kernel_lines(run)
    assert runner.cpu_line(runner.cpu()) in lines[0] and "kernel Haswell" in lines[0], lines


def regions(text):
    """What the tables of a page stand under, read without speed_doc: for every table between the speed-table
    markers, (the kind its last host marker named, the last ### heading, the lines from heading to table)."""
    region = text.split("<!-- speed-table -->", 1)[1].split("<!-- /speed-table -->", 1)[0]
    kind, heading, since, found = None, None, [], []
    for line in region.splitlines():
        if line.startswith("<!-- speed-host: "):
            kind, heading, since = line[len("<!-- speed-host: "):-len(" -->")], None, []
        elif line.startswith("### "):
            heading, since = line, []
        elif line.startswith("| config |"):
            found.append((kind, heading, "\n".join(since)))
        since.append(line)
    return found


def test_the_doc_keeps_one_block_per_host_each_headed_by_host_date_and_command(tmp_path, bench):
    """speed.py --doc on a page holding another host's block: a run on a Xeon adds its block, a second one
    rewrites it in place, a run on an EPYC adds a third; each table stands under its own host's heading
    (CPU, flags, cores, date) and command, and the other host's block is left as it was."""
    runner, speed_doc = bench("runner"), bench("speed_doc")
    other = ("<!-- speed-host: Other CPU (family 1, model 2): avx2, no avx512f, no amx_tile -->\n"
             "### Other CPU (family 1, model 2): avx2, no avx512f, no amx_tile; 4 cores; measured 2026-01-01\n\n"
             "`python bench/speed.py`: measured by hand.\n\n| config | H |\n|---|---|\n| S | 128 |")
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\n<!-- speed-table -->\n{other}\n<!-- /speed-table -->\n\nColumns: ...\n")
    run = run_record(bench)
    for cpuinfo, date in [(XEON, "2026-12-06"), (XEON, "2026-12-07"), (EPYC, "2026-12-08")]:
        (tmp_path / "cpuinfo").write_text(cpuinfo)
        run.update(cpu=runner.cpu(tmp_path / "cpuinfo"), date=date)
        assert speed_doc.update_doc(page, run, [ROW]) is None
    text = page.read_text()
    assert other in text and text.endswith("<!-- /speed-table -->\n\nColumns: ...\n")
    xeon = "Intel(R) Xeon(R) Platinum 8488C (family 6, model 143): avx2, avx512f, amx_tile"
    epyc = "AMD EPYC (family 23, model 1): avx2, no avx512f, no amx_tile"
    cores = os.cpu_count()
    assert [(kind, heading) for kind, heading, _ in regions(text)] == [
        ("Other CPU (family 1, model 2): avx2, no avx512f, no amx_tile", other.splitlines()[1]),
        *[(xeon, f"### {xeon}; {cores} cores; measured 2026-12-07")] * 2,  # training, then sampling and eval
        *[(epyc, f"### {epyc}; {cores} cores; measured 2026-12-08")] * 2]
    assert all(f"`{run['command']}`" in between for _, _, between in regions(text)[1:])
    assert "2026-12-06" not in text  # the Xeon's first block was replaced, not kept beside the second


def test_performance_md_heads_every_table_with_its_host(bench):
    """docs/performance.md as committed: every speed table under a host marker and a heading naming that
    host and a date; the kinds unique; and a run on another host adds its block without touching them."""
    speed_doc = bench("speed_doc")
    text = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    found = regions(text)
    assert found
    for kind, heading, between in found:
        assert kind and heading.startswith(f"### {kind}; ") and "measured 20" in heading, (kind, heading)
        assert "python bench/speed.py" in between  # the command, in backquotes: its first line at least
    region = text.split(speed_doc.BEGIN, 1)[1].split(speed_doc.END, 1)[0]
    before, blocks = speed_doc.blocks(region)
    assert len({k for k, _ in blocks}) == len(blocks) and not before.strip()
    run = dict(run_record(bench), cpu={"model_name": "New CPU", "family": 1, "model": 1, "cores": 2, "avx2": True,
                                       "avx512f": False, "amx_tile": False})
    assert speed_doc.with_host(region, run, [ROW]).startswith(region.strip())


# ---------------------------------------------------------------- the house rules, for the bench too

def test_no_bench_module_over_400_lines_and_no_import_cycles():
    from test_layout import MAX_LINES, cycles

    names = {p.stem for p in BENCH.glob("*.py")}
    long = {p.name: n for p in BENCH.glob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"bench modules over {MAX_LINES} lines: {long}"
    graph = {}
    for path in BENCH.glob("*.py"):
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                found.add(node.module)
        graph[path.stem] = found & names - {path.stem}
    assert not cycles(graph), cycles(graph)


# ---------------------------------------------------------------- the GEMM bound, shared out as the step is


def test_the_gemm_bound_times_a_workers_share_of_the_streams_on_one_thread(monkeypatch, bench):
    """With two workers a worker's products are those of half the streams on one BLAS thread, each on its
    own core; timing all the streams' products on two threads read below the step's own speed on L."""
    from argparse import Namespace

    speed_train = bench("speed_train")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    a = Namespace(workers=0, threads=2)
    assert speed_train.bound_split(a, 512, 64) == (2, 32, 1)  # L: two workers, as charlstm train starts
    assert speed_train.bound_split(a, 64, 32) == (1, 32, 2)  # too small for workers: one process, two threads
    assert speed_train.bound_split(Namespace(workers=1, threads=2), 512, 64) == (1, 64, 2)  # --workers 1

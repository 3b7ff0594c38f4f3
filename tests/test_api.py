"""charlstm.api: docs/api.md's examples, run as they are written, and the command line printing what the
API returns."""

import dataclasses
import doctest
import json

from charlstm import api
from charlstm.config import Config
from conftest import ROOT, run_cli


def run_examples(text, name):
    """doctest over Markdown: the examples in order, in the test's empty directory (conftest); a code
    fence ends an example's expected output, as a blank line does. Returns (failed, attempted)."""
    text = "\n".join("" if line.startswith("```") else line for line in text.splitlines())
    test = doctest.DocTestParser().get_doctest(text, {}, name, name, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    return runner.summarize(verbose=False)


def test_every_example_of_docs_api_md_runs_as_written():
    failed, attempted = run_examples((ROOT / "docs" / "api.md").read_text(encoding="utf-8"), "docs/api.md")
    assert attempted > 20 and failed == 0


def test_readme_from_python_runs_as_written():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    failed, attempted = run_examples(section, "README.md, From Python")
    assert attempted >= 4 and failed == 0


def test_the_command_line_prints_what_the_api_returns(four_run, tmp_path):
    model = api.load(four_run)
    text = tmp_path / "held-out.txt"
    text.write_text("the cat sat on the mat.\nmy fish swam in the bowl.\n")
    code, out, _ = run_cli("eval", "-c", four_run, text, "--format", "json")
    report = json.loads(out)
    assert code == 0 and report == model.score_files([str(text)])
    assert report.pop("files") == [{"file": str(text), **report}] and report == model.score(text.read_text())
    code, out, _ = run_cli("sample", "-c", four_run, "--format", "jsonl", "--seed", 3, "-n", 30, "--num-samples",
                           2, "the", "my ___.")
    records = [json.loads(line) for line in out.splitlines()]
    results = model.sample(["the", "my ___."], length=30, seed=3, num_samples=2)
    assert records == [dict(dataclasses.asdict(r), seed=3 + i) for i, r in enumerate(results)]
    cloze = tmp_path / "cloze.tsv"
    cloze.write_text("the dog lay on the ___.\trug\na bird sang in the ___.\tbowl\n")
    code, out, _ = run_cli("eval", "-c", four_run, "--cloze", cloze, "--format", "json")
    scored = model.cloze(str(cloze))
    assert scored.pop("fills") == ["rug", "tree"] and json.loads(out) == scored == {"accuracy": 0.5, "n": 2}


def test_train_takes_a_config_built_in_code(tmp_path):
    """A config.Config: what it changes from the defaults is the run's, as a file's would be; settings
    come last."""
    corpus = tmp_path / "pets.txt"
    corpus.write_text("the cat sat on the mat.\n" * 100)
    cfg = Config()
    cfg.model.hidden, cfg.model.layers, cfg.data.batch, cfg.data.window = 12, 1, 4, 16
    summary = api.train(corpus, cfg, steps=3, out=tmp_path / "run", settings=["optim.lr=0.02"])
    assert summary["steps"] == 3 and summary["run_dir"] == str(tmp_path / "run")
    saved = api.load(tmp_path / "run").config
    assert (saved.model.hidden, saved.data.window, saved.optim.lr) == (12, 16, 0.02)
    dry = api.trainer(corpus, cfg, steps=3, out=tmp_path / "dry").dry_run()
    assert any(line.startswith("  hidden: 12") and "the config" in line for line in dry)

"""The Python API: load a model, sample and fill blanks, score text, run a cloze set, train (docs/api.md).

    from charlstm import api
    model = api.load("runs/my-novel")          # a checkpoint or a run directory; None: the rooms model
    model.sample("It was a dark", length=100, seed=1)[0].text
    model.fill(["Mady said hi to ___."])       # greedy blank fills
    model.score("A held-out text.")            # {"chars", "nats_per_char", "bits_per_char", "perplexity"}
    model.cloze(prompts, answers)              # {"accuracy", "n", "fills"}
    api.train("my-novel.txt", config="tiny", steps=100, out="runs/tiny")   # the run's summary

Each returns what the command line prints: `charlstm sample --format jsonl` writes sample.Result's
fields, `charlstm eval --format json` the dicts of score and cloze, `charlstm train` the summary. Anything
wrong with the input raises an errors.CharlstmError whose message is written for a user (the command
line prints it on one line). The command line (cli/) parses options and calls this module.
"""

import dataclasses
import pathlib
from dataclasses import dataclass

from . import checkpoint, evaluate
from . import sample as sample_mod
from .errors import CharlstmError
from .vocab import encode_text


def load(path=None, warn=None):
    """The model of a checkpoint file, or of a run directory (the one of its best.npz and latest.npz with
    the lower validation loss; warn(line) is told which when they differ); without a path, the shipped
    rooms model (data/rooms.npz)."""
    if path is None:
        from . import assets

        if not assets.MODEL.exists():
            raise CharlstmError("no model given, and the shipped rooms model is not installed: give a checkpoint "
                                "(.npz) or a run directory")
        path = assets.MODEL
    chosen, why = checkpoint.choose(path)
    if why and warn is not None:
        warn(f"note: {why}")
    return Model(checkpoint.load(chosen))


@dataclass
class Model:
    """A trained model, read from its checkpoint (checkpoint.Checkpoint: params, vocab, config, spec)."""

    checkpoint: checkpoint.Checkpoint

    @property
    def path(self):
        return self.checkpoint.path

    @property
    def vocab(self):
        return self.checkpoint.vocab

    @property
    def config(self):
        return self.checkpoint.config

    @property
    def step(self):
        return self.checkpoint.step

    def sample(self, prompts="", *, length=200, temperature=1.0, top_k=0, top_p=1.0, greedy=False, until=(),
               num_samples=1, seed=0, unknown="error", batch=64, warn=None):
        """Complete a prompt (a str) or each of a list of prompts, num_samples times each: a list of
        sample.Result (prompt, completion, text, logprob), a prompt's samples together. A prompt holding
        ___ is filled at the blank. Sample i of the list draws with seed + i, as `charlstm sample` does, so
        the same seed gives the same text. Each prompt is read as the start of a line."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        options = sample_mod.Options(length=length, temperature=temperature, top_k=top_k, top_p=top_p,
                                     greedy=greedy, until=(until,) if isinstance(until, str) else tuple(until),
                                     unknown=unknown)
        collected = _Collect(self.vocab)
        self.complete([prompts], options, seed, collected, num_samples, batch, warn)
        return collected.results

    def complete(self, prompt_batches, options, seed, writer, num_samples=1, batch=64, warn=None):
        """Complete batches of prompts with sample.Options, handing the samples to writer as they are made
        (streams.Writer, which `charlstm sample` writes through); returns the number of samples."""
        c = self.checkpoint
        options = dataclasses.replace(options, lines=self._lines)  # as it was trained
        return sample_mod.complete(c.params, c.vocab, prompt_batches, options, seed, num_samples, batch, writer,
                                   warn, c.spec)

    def fill(self, prompts, unknown="error", warn=None):
        """The greedy fill of the blank (___) of each prompt: a list of strings."""
        c = self.checkpoint
        return sample_mod.fill_blanks(c.params, c.vocab, list(prompts), unknown=unknown, warn=warn, spec=c.spec)

    def score(self, text, unknown="error", warn=None, window=None):
        """Cross-entropy of a text, read from the zero state (as `charlstm eval` reads a file): {"chars",
        "nats_per_char", "bits_per_char", "perplexity"}; chars counts the characters scored, all but the
        first, or, for a model trained on lines, every character of every line, each line read after a
        newline from the zero state (evaluate.text_streams). window: see `scoring_window`."""
        c = self.checkpoint
        ids = encode_text(c.vocab, text, unknown, warn, where="the text")
        total, count = evaluate.score(c.params, evaluate.text_streams(ids, c.vocab, self._lines),
                                      self.scoring_window(window), spec=c.spec)
        if count == 0:
            raise CharlstmError("nothing to score: a text needs at least two characters")
        return evaluate.metrics(total, count)

    def score_files(self, files, encoding="utf-8", errors="strict", unknown="error", warn=None, window=None,
                    progress=None):
        """`charlstm eval FILES`: each file (or directory, or - for stdin) scored as one text, or line by
        line for a model trained on lines (data.mode lines), the characters pooled: the dict of score, with
        "files", the same figures for each file (None where one has nothing to score). progress(total) may
        return a bar (update(n), close())."""
        c = self.checkpoint
        return evaluate.score_files(c.params, c.vocab, files, encoding, unknown, warn, self.scoring_window(window),
                                    progress, c.spec, errors, lines=self._lines)

    def scoring_window(self, window=None):
        """Characters per forward pass when scoring: window if given, else 256, or for a model with a
        pointer the window it was trained with. For most models it changes only speed and memory; a
        pointer sees the earlier positions of its own window only (pointer.py), so its score depends
        on it, and the training window scores it as training and validation did."""
        if window is not None:
            return window
        return self.checkpoint.config.data.window if self.checkpoint.spec.pointer else 256

    @property
    def _lines(self):
        """Whether the model was trained on lines, each from the zero state: then it is scored and sampled so."""
        return self.checkpoint.config.data.mode == "lines"

    def cloze(self, prompts, answers=None, unknown="error", warn=None, encoding="utf-8", errors="strict"):
        """Exact-match accuracy of greedy blank filling: {"accuracy", "n", "fills"}. prompts: a list of
        prompts that each hold ___ with answers the list of right fills, or the path of a PROMPT<TAB>ANSWER
        file (answers left out)."""
        if isinstance(prompts, (str, pathlib.Path)):
            if answers is not None:
                raise CharlstmError("give a cloze file, or prompts with their answers, not both")
            prompts, answers = evaluate.read_cloze(str(prompts), encoding, errors)
        prompts, answers = list(prompts), list(answers or ())
        if len(prompts) != len(answers) or not prompts:
            raise CharlstmError(f"a cloze set needs one answer per prompt: {len(prompts)} prompts, "
                                f"{len(answers)} answers")
        c = self.checkpoint
        accuracy, n, fills = evaluate.cloze(c.params, c.vocab, prompts, answers, unknown, warn, c.spec)
        return {"accuracy": accuracy, "n": n, "fills": fills}

class _Collect:
    """A writer for Model.complete that keeps every sample's Result (the held text of streams.Writer)."""

    def __init__(self, vocab):
        self.vocab, self.results = vocab, []

    def start(self, requests):
        self.requests = requests
        self.texts = sample_mod.Collector(self.vocab, len(requests))
        return self

    def step(self, chosen, keep, done, logprob):
        self.texts.step(chosen, keep)

    def finish(self, logprob):
        for b, r in enumerate(self.requests):
            self.results.append(sample_mod.result(r, self.texts.text(b), float(logprob[b])))


def trainer(corpus=(), config=None, *, out=None, resume=None, init_from=None, steps=None, time_budget=None,
            seed=None, settings=(), val=None, force=False, quiet=True, flags=None):
    """A train.Trainer ready to run (or dry_run): what `charlstm train` builds from its options. corpus: a
    file, a directory or a list of them ("-" for stdin; none: the rooms demo); config: a preset name, a
    YAML file or a config.Config; settings: "section.key=value" strings or a {"section.key": value} dict,
    applied last, as --set."""
    from .launch import prepare

    if isinstance(corpus, (str, pathlib.Path)):
        corpus = [corpus]
    if isinstance(settings, dict):
        settings = [f"{key}={_yaml(value)}" for key, value in settings.items()]
    given = {"model.init_from": init_from, "train.steps": steps, "train.time_budget": time_budget,
             "train.seed": seed, **(flags or {})}
    given = {k: (str(v) if isinstance(v, pathlib.Path) else v) for k, v in given.items()}
    return prepare([str(c) for c in corpus], config, None if out is None else str(out),
                   None if resume is None else str(resume), given, list(settings), None if val is None else str(val),
                   force, quiet)


def train(corpus=(), config=None, **options):
    """Train a model (see trainer for the arguments) and return the summary `charlstm train` ends with:
    {"steps", "val_loss", "best_val", "best_step", "run_dir", "reason", ...}; api.load(summary["run_dir"])
    then gives the model. quiet=False shows the progress and notes on stderr."""
    return trainer(corpus, config, **options).run()


def _yaml(value):
    """A setting's value as --set reads it (YAML): None as null, booleans as true/false."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=float("inf")).strip().removesuffix("...").strip()


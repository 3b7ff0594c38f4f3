"""model.size auto: when it applies, what it chooses from the measured speeds, and that the choice is
said, saved and reproducible."""

import math

import pytest
import yaml

from charlstm import autosize, config
from charlstm.errors import ConfigError, DataError
from charlstm.launch import prepare

from conftest import run_cli


def origins_of(**layers):
    return config.origins(list(layers.items()))


def test_a_time_budget_without_a_model_size_sizes_the_run():
    cfg = config.load(overrides=["train.time_budget=10m"])
    assert autosize.wanted(cfg, origins_of(flag={"train": {"time_budget": "10m"}}))


@pytest.mark.parametrize("layer", [{"model": {"hidden": 512}}, {"model": {"layers": 1}}])
def test_a_given_model_size_is_kept_unless_auto_is_asked_for(layer):
    cfg = config.load(overrides=["train.time_budget=10m"])
    assert not autosize.wanted(cfg, origins_of(preset=layer))
    cfg.model.size = "auto"
    assert autosize.wanted(cfg, origins_of(preset=layer))


def test_a_config_built_in_code_is_sized_only_when_it_asks_for_auto():
    cfg = config.load(overrides=["train.time_budget=10m"])
    assert not autosize.wanted(cfg, None)  # no record of what was set: every key counts as given
    cfg.model.size = "auto"
    assert autosize.wanted(cfg, None)


def test_no_budget_no_sizing_and_auto_without_a_budget_is_an_error():
    cfg = config.load()
    assert not autosize.wanted(cfg, origins_of())
    cfg.model.size = "fixed"
    cfg.train.time_budget = "10m"
    assert not autosize.wanted(cfg, origins_of())
    with pytest.raises(ConfigError, match="give --time-budget"):  # before any corpus is read
        config.load(overrides=["model.size=auto"])


def test_dropout_grows_with_epochs_times_parameters_per_character_up_to_a_half():
    pressure, rate = autosize.DROPOUT_AT
    assert autosize._dropout(pressure * 1e6, 1e6, 1e6) == rate
    assert autosize._dropout(20e6, 1e5, 1e6) == 0.0  # many epochs, but a small model
    assert autosize._dropout(1e6, 3e6, 1e6) < rate  # one epoch, a big model
    values = [autosize._dropout(seen, 1e6, 1e6) for seen in (1e6, 4e6, 16e6, 64e6, 1e12)]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == 0.5
    assert autosize._dropout(0, 1e6, 1e6) == 0.0


class Timed:
    """A stand-in for the machine: a step of each shape costs its parameter count times `per_parameter`
    seconds (so the characters per parameter fall with size), a validation `val_s`."""

    def __init__(self, per_parameter=1e-8, val_s=1.0, masks=1.0, largest_batch=1024):
        self.per_parameter, self.val_s, self.masks, self.timed = per_parameter, val_s, masks, []
        self.largest_batch = largest_batch  # a text too short for larger batches

    def __call__(self, cfg, shape, inputs, free, budget, dropout=None):
        self.timed.append((shape, dropout))
        if shape.batch > self.largest_batch:
            raise DataError(f"batch {shape.batch} needs more text")
        cost = self.per_parameter * autosize._parameters(config.Config(), shape, 65) * (self.masks if dropout else 1)
        return cost, shape.batch * 64, self.val_s


@pytest.fixture
def inputs():
    class Corpus:
        train, vocab = range(1_000_000), range(65)

    class Inputs:
        corpus = Corpus()

    return Inputs()


@pytest.mark.parametrize("budget", [20, 60, 600, 6000, 60000])
def test_choose_takes_the_largest_shape_that_makes_the_target_steps_in_the_budget(monkeypatch, inputs, budget):
    timed = Timed()
    monkeypatch.setattr(autosize, "_time_shape", timed)
    cfg = config.load(overrides=[f"train.time_budget={budget}"])
    choice = autosize.choose(cfg, origins_of(), inputs, budget)
    steps = dict(choice.tried)
    shape = choice.shape
    index = autosize.LADDER.index(shape)
    if index > 0:
        assert steps[shape] >= autosize.STEPS
    if index + 1 < len(autosize.LADDER):
        assert steps[autosize.LADDER[index + 1]] < autosize.STEPS  # the next one up was tried, and falls short
    assert {0, len(autosize.LADDER) - 1} & {index} or len(steps) >= 2
    assert len(timed.timed) <= math.ceil(math.log2(len(autosize.LADDER))) + 2  # a bisection (and a second
    # timing of the choice, with dropout), not every shape
    assert (cfg.model.hidden, cfg.model.layers, cfg.data.batch) == (shape.hidden, shape.layers, shape.batch)
    assert cfg.model.size == "fixed" and cfg.optim.schedule == "cosine"
    step_s = timed.per_parameter * autosize._parameters(config.Config(), shape, 65)
    assert [d for _, d in timed.timed].count(None) == len(timed.timed) - bool(cfg.model.decoder_dropout)
    spent = cfg.train.steps * step_s + math.ceil(cfg.train.steps / cfg.train.eval_every) * timed.val_s
    assert 0.85 * budget <= spent <= budget  # the schedule ends as the budget does, validations included


def test_choose_bigger_models_for_bigger_budgets(monkeypatch, inputs):
    monkeypatch.setattr(autosize, "_time_shape", Timed())
    sizes = []
    for budget in (60, 600, 6000):
        cfg = config.load(overrides=[f"train.time_budget={budget}"])
        sizes.append(autosize._parameters(cfg, autosize.choose(cfg, origins_of(), inputs, budget).shape, 65))
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_what_the_user_set_is_kept_and_shapes_are_chosen_among_those_with_it(monkeypatch, inputs):
    timed = Timed()
    monkeypatch.setattr(autosize, "_time_shape", timed)
    given = {"model": {"layers": 2, "decoder_dropout": 0.05}, "optim": {"lr": 0.001}}
    cfg = config.Config()
    config.update(cfg, {**given, "train": {"time_budget": "10m"}})
    cfg.model.size = "auto"
    choice = autosize.choose(cfg, origins_of(flag=given), inputs, 600)
    assert all(shape.layers == 2 for shape, _ in timed.timed)
    assert cfg.model.layers == 2 and cfg.model.decoder_dropout == 0.05 and cfg.optim.lr == 0.001
    assert "model.decoder_dropout" not in choice.keys and "optim.lr" not in choice.keys
    cfg = config.Config()
    config.update(cfg, {"model": {"hidden": 300, "layers": 3}})
    cfg.model.size = "auto"
    chosen = autosize.choose(cfg, origins_of(flag={"model": {"hidden": 300, "layers": 3}}), inputs, 600).shape
    assert (chosen.hidden, chosen.layers) == (300, 3)  # no shape of the ladder has them: the user's own


def test_a_run_with_a_budget_says_what_it_chose_and_saves_it_reproducibly(tmp_path, corpus):
    run = tmp_path / "run"
    code, _, err = run_cli("train", corpus, "--out", run, "--time-budget", "3s", "--set", "train.workers=1")
    assert code == 0, err
    said = [line for line in err.splitlines() if line.startswith("model.size auto:")]
    assert len(said) == 1 and "none makes 3,000 steps" in said[0] and "s of timing" in said[0]  # 3 s: too short
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["size"] == "fixed" and saved["optim"]["schedule"] == "cosine"
    chosen = next(line for line in err.splitlines() if line.strip().startswith("chosen:"))
    assert f"model.hidden={saved['model']['hidden']}" in chosen and f"train.steps={saved['train']['steps']}" in chosen
    trainer = prepare([str(corpus)], str(run / "config.yaml"), tmp_path / "again",
                      flags={"train.time_budget": "3s"}, quiet=True)
    assert not autosize.wanted(trainer.cfg, trainer.origins)  # the saved file gives the size: no new sizing
    assert config.to_dict(trainer.cfg) == {**saved, "train": {**saved["train"], "time_budget": "3s"}}


def test_dry_run_names_auto_as_the_origin_of_what_it_chose(corpus):
    code, out, err = run_cli("train", corpus, "--time-budget", "1m", "--dry-run", "--set", "train.workers=1",
                             "--set", "optim.lr=0.002")
    assert code == 0, err
    origin = {line.split(":")[0].strip(): line.split("# ")[-1] for line in out.splitlines() if "# " in line}
    assert origin["hidden"] == origin["steps"] == origin["decoder_dropout"] == "model.size auto"
    assert origin["lr"] == "--set" and origin["size"] == "model.size auto chose the shape above; fixed from here"
    assert "  size: fixed  " in out  # what config.yaml records, so that a resumed run keeps the shape
    assert "model.size auto:" in err
    assert "stopped after 60 s (train.time_budget)" in out  # the budget in seconds, however it was written


def test_the_choice_is_timed_again_with_its_dropout_masks_which_cost_time_too(monkeypatch, inputs):
    plans = []
    for masks in (1.0, 1.5):
        monkeypatch.setattr(autosize, "_time_shape", Timed(per_parameter=1e-7, masks=masks))
        cfg = config.load(overrides=["train.time_budget=6000"])
        choice = autosize.choose(cfg, origins_of(), inputs, 6000)
        plans.append((choice.shape, cfg.train.steps, cfg.model.decoder_dropout))
    (shape, steps, dropout), (shape_masked, steps_masked, _) = plans
    assert shape == shape_masked and dropout > 0
    assert 0.6 < steps_masked / steps < 0.7  # the steps that fit with the masks' cost, not without


def test_a_batch_given_alone_goes_into_every_shape_instead_of_narrowing_the_ladder(monkeypatch, inputs):
    timed = Timed()
    monkeypatch.setattr(autosize, "_time_shape", timed)
    cfg = config.load(overrides=["train.time_budget=600", "data.batch=16"])
    autosize.choose(cfg, origins_of(flag={"data": {"batch": 16}}), inputs, 600)
    assert {shape.batch for shape, _ in timed.timed} == {16} and len({s for s, _ in timed.timed}) >= 2
    assert cfg.data.batch == 16


def test_shapes_whose_batch_the_text_is_too_short_for_are_passed_over(monkeypatch, inputs):
    monkeypatch.setattr(autosize, "_time_shape", Timed(per_parameter=1e-12, largest_batch=32))
    cfg = config.load(overrides=["train.time_budget=600"])
    choice = autosize.choose(cfg, origins_of(), inputs, 600)  # every shape is fast: the top would be taken
    assert choice.shape == autosize.Shape(512, 2, 32) and choice.why == "largest"
    monkeypatch.setattr(autosize, "_time_shape", Timed(largest_batch=8))
    with pytest.raises(DataError, match="needs more text"):  # not even the smallest fits: the text's error
        autosize.choose(config.load(overrides=["train.time_budget=600"]), origins_of(), inputs, 600)


def test_a_config_built_in_code_keeps_what_differs_from_the_defaults(monkeypatch, inputs):
    monkeypatch.setattr(autosize, "_time_shape", Timed())
    cfg = config.load(overrides=["train.time_budget=600", "model.size=auto", "model.layers=2", "optim.lr=0.001"])
    autosize.choose(cfg, None, inputs, 600)  # no origins: keys at their default values are auto's
    assert cfg.model.layers == 2 and cfg.optim.lr == 0.001 and cfg.optim.schedule == "cosine"


@pytest.mark.parametrize("budget, why", [(20, "smallest"), (1e7, "top"), (600, "largest")])
def test_the_message_says_why_the_shape_was_taken(monkeypatch, inputs, budget, why):
    monkeypatch.setattr(autosize, "_time_shape", Timed(per_parameter=1e-7))
    cfg = config.load(overrides=[f"train.time_budget={budget}"])
    choice = autosize.choose(cfg, origins_of(), inputs, budget)
    assert choice.why == why
    said = choice.lines()[0]
    assert {"smallest": "none makes 3,000 steps", "top": "all make 3,000 steps",
            "largest": "the largest shape that makes 3,000 steps"}[why] in said
    assert f"{choice.shape.hidden}x{choice.shape.layers}: {cfg.train.steps:,}" in said  # the steps it will make


@pytest.mark.parametrize("text_chars, noted", [(3_000, True), (1_000_000, False)])
def test_a_plan_that_reads_a_small_text_many_times_says_so(monkeypatch, text_chars, noted):
    """Issue 33, item 8: on a tiny text auto still fills the budget (no shape is small enough), so its
    message says how often the plan reads the text, and what keeps the run from losing by it."""
    class Corpus:
        train, vocab = range(text_chars), range(65)

    class Inputs:
        corpus = Corpus()

    monkeypatch.setattr(autosize, "_time_shape", Timed())
    cfg = config.load(overrides=["train.time_budget=600"])
    choice = autosize.choose(cfg, origins_of(), Inputs(), 600)
    epochs = cfg.train.steps * cfg.data.batch * 64 / text_chars
    said = "\n".join(choice.lines())
    assert ("the text is small" in said) == noted
    if noted:
        assert f"({text_chars:,} characters): the plan reads it {epochs:,.0f} times" in said
        assert "best.npz keeps the step with the lowest validation loss" in said

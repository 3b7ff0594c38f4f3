"""charlstm.config: defaults < YAML file < overrides, type checks, validation, durations, dump and round trips."""

import dataclasses
import math
import pathlib

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from charlstm import config
from charlstm.config import Config, ConfigError

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))


def field_names(section):
    return [f.name for f in dataclasses.fields(config.SECTIONS[section])]


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- defaults


def test_defaults_load_and_validate():
    cfg = config.load()
    assert cfg == Config()
    config.validate(cfg)
    assert cfg.model.cell == "lstm" and cfg.model.hidden == 256 and cfg.model.forget_bias is None
    assert cfg.data.batch == 32 and cfg.data.window == 64 and cfg.data.random_offset is True
    assert cfg.optim.name == "adam" and cfg.optim.lr == 2e-3 and cfg.optim.betas == (0.9, 0.999)
    assert cfg.train.steps == 10000 and cfg.train.time_budget is None


def test_some_config_is_shipped():
    assert SHIPPED, f"no configs/*.yaml under {ROOT}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_config_loads(path):
    cfg = config.load(path)
    config.validate(cfg)
    mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    for section, values in mapping.items():  # every key in the file took effect
        for key, value in (values or {}).items():
            got = getattr(getattr(cfg, section), key)
            if isinstance(value, list):
                value = tuple(value)
            elif isinstance(got, float) and isinstance(value, str):  # 3e-3 is a string to YAML 1.1
                value = float(value)
            assert got == value, f"{section}.{key}"


def test_tiny_config_values():
    cfg = config.load(ROOT / "configs" / "tiny.yaml")
    assert (cfg.model.hidden, cfg.model.layers, cfg.data.batch, cfg.data.window) == (16, 1, 4, 16)
    assert cfg.train.steps == 40 and cfg.optim.lr == 0.01
    assert cfg.optim.betas == (0.9, 0.999)  # untouched keys keep their defaults


# ------------------------------------------------------------------------------- files and overrides


def test_yaml_file_overrides_keys(tmp_path):
    path = write(tmp_path, "model:\n  cell: gru\n  hidden: 64\noptim:\n  lr: 3e-3\n  betas: [0.5, 0.6]\n"
                           "train:\n  time_budget: 10m\n  cloze: cloze.tsv\ndata:\n")
    cfg = config.load(path)
    assert cfg.model.cell == "gru" and cfg.model.hidden == 64
    assert cfg.optim.lr == pytest.approx(0.003) and isinstance(cfg.optim.lr, float)  # YAML 1.1 reads 3e-3 as str
    assert cfg.optim.betas == (0.5, 0.6) and isinstance(cfg.optim.betas, tuple)
    assert cfg.train.time_budget == "10m" and cfg.train.cloze == "cloze.tsv"
    assert cfg.model.layers == 2 and cfg.data == Config().data


def test_empty_yaml_file_gives_defaults(tmp_path):
    assert config.load(write(tmp_path, "# nothing here\n")) == Config()


def test_int_accepted_for_float_and_number_for_string(tmp_path):
    cfg = config.load(write(tmp_path, "optim:\n  lr: 1\ntrain:\n  time_budget: 90\n"))
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    assert cfg.train.time_budget == "90"


def test_parse_overrides_reads_yaml_scalars():
    mapping = config.parse_overrides(["optim.lr=3e-3", "optim.betas=[0.8, 0.9]", "train.time_budget=10m",
                                      "model.hidden=128", "data.random_offset=false", "model.forget_bias=null",
                                      " model.cell = gru "])
    assert mapping["optim"]["betas"] == [0.8, 0.9]
    assert mapping["train"] == {"time_budget": "10m"}
    assert mapping["model"] == {"hidden": 128, "forget_bias": None, "cell": "gru"}
    assert mapping["data"] == {"random_offset": False}
    cfg = config.update(Config(), mapping)
    assert cfg.optim.lr == pytest.approx(0.003)
    assert cfg.optim.betas == (0.8, 0.9)
    assert cfg.train.time_budget == "10m"
    assert cfg.model.hidden == 128 and cfg.model.cell == "gru" and cfg.data.random_offset is False


@pytest.mark.parametrize("item", ["optim.lr", "lr=3", "optim.lr.x=3", "=3", ".lr=3"])
def test_malformed_override_is_an_error(item):
    with pytest.raises(ConfigError, match="section.key=value"):
        config.parse_overrides([item])


def test_overrides_apply_after_the_file(tmp_path):
    path = write(tmp_path, "model:\n  hidden: 64\n  layers: 3\noptim:\n  lr: 0.1\n")
    cfg = config.load(path, ["model.hidden=32", "optim.lr=3e-3", "optim.betas=[0.8, 0.9]",
                             "train.time_budget=10m"])
    assert cfg.model.hidden == 32  # the override wins over the file
    assert cfg.model.layers == 3  # the file wins over the default
    assert cfg.optim.lr == pytest.approx(0.003)
    assert cfg.optim.betas == (0.8, 0.9)
    assert cfg.train.time_budget == "10m"


def test_later_override_wins():
    assert config.load(overrides=["model.hidden=8", "model.hidden=9"]).model.hidden == 9


def test_overrides_are_validated_together():
    # nesterov alone is invalid; with momentum set in the same --set list it is fine
    cfg = config.load(overrides=["optim.nesterov=true", "optim.momentum=0.9"])
    assert cfg.optim.nesterov is True and cfg.optim.momentum == 0.9


# ----------------------------------------------------------------------------------------- bad keys


def test_unknown_section_names_it_and_lists_sections():
    with pytest.raises(ConfigError) as e:
        config.load(overrides=["modle.hidden=3"])
    msg = str(e.value)
    assert "modle" in msg
    for section in ("model", "data", "optim", "train"):
        assert section in msg


def test_unknown_section_in_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, "trian:\n  steps: 3\n"))
    msg = str(e.value)
    assert "trian" in msg and "run.yaml" in msg
    for section in ("model", "data", "optim", "train"):
        assert section in msg


@pytest.mark.parametrize("section, key", [("model", "hiden"), ("optim", "learning_rate"), ("data", "batch_size"),
                                          ("train", "epochs")])
def test_unknown_key_names_it_and_lists_valid_keys(section, key):
    with pytest.raises(ConfigError) as e:
        config.load(overrides=[f"{section}.{key}=3"])
    msg = str(e.value)
    assert f"{section}.{key}" in msg
    for name in field_names(section):
        assert name in msg


def test_unknown_key_in_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, "model:\n  cell: lstm\n  units: 3\n"))
    msg = str(e.value)
    assert "model.units" in msg
    for name in field_names("model"):
        assert name in msg


@pytest.mark.parametrize("override, key", [
    ("model.hidden=abc", "model.hidden"),  # string for int
    ("model.hidden=true", "model.hidden"),  # bool for int
    ("model.hidden=2.5", "model.hidden"),  # float for int
    ("optim.lr=[1, 2]", "optim.lr"),  # list for float
    ("optim.lr=fast", "optim.lr"),  # non-numeric string for float
    ("optim.lr=true", "optim.lr"),  # bool for float
    ("data.random_offset=1", "data.random_offset"),  # int for bool
    ("data.random_offset=yes please", "data.random_offset"),
    ("train.cloze=[a, b]", "train.cloze"),  # list for str
    ("optim.betas=0.9", "optim.betas"),  # number for pair
    ("optim.betas=[0.9, 0.99, 0.999]", "optim.betas"),  # triple for pair
    ("optim.betas=[0.9, true]", "optim.betas"),  # bool inside the pair
    ("optim.betas=[0.9, x]", "optim.betas"),
])
def test_wrong_type_is_an_error(override, key):
    with pytest.raises(ConfigError) as e:
        config.load(overrides=[override])
    msg = str(e.value)
    assert key in msg and "must be" in msg and "\n" not in msg


@pytest.mark.parametrize("override, choices", [
    ("model.cell=lstmx", ("lstm", "gru", "rnn")),
    ("optim.name=adagrad", ("sgd", "rmsprop", "adam", "adamw")),
    ("optim.schedule=linear", ("constant", "step", "cosine")),
    ("data.mode=words", ("stream", "lines")),
    ("data.errors=ignore", ("strict", "replace")),
    ("train.on_save_error=retry", ("stop", "continue")),
    ("train.engine=jax", ("numpy", "torch")),
    ("train.device=tpu", ("cpu", "cuda", "mps")),
])
def test_value_outside_choices_lists_them(override, choices):
    key, value = override.split("=")
    with pytest.raises(ConfigError) as e:
        config.load(overrides=[override])
    msg = str(e.value)
    assert key in msg and value in msg
    for choice in choices:
        assert choice in msg


@pytest.mark.parametrize("override", ["model.hidden=null", "model.hidden=", "model.cell=~", "optim.lr=null",
                                      "optim.betas=null", "data.random_offset=null", "data.encoding="])
def test_null_for_non_optional_key(override):
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=f"{key} cannot be null"):
        config.load(overrides=[override])


@pytest.mark.parametrize("override", ["model.forget_bias=null", "train.time_budget=null", "train.cloze="])
def test_null_for_optional_key(override):
    section, key = override.split("=")[0].split(".")
    cfg = config.load(overrides=["model.forget_bias=1.0", "train.time_budget=1m", "train.cloze=c.tsv", override])
    assert getattr(getattr(cfg, section), key) is None


@pytest.mark.parametrize("text", ["model: [\n", "model:\n  hidden: 1\n x: 2\n", "model: {hidden: 1\n",
                                  "\tmodel:\n", "model:\n  cell: 'lstm\n"])
def test_malformed_yaml_is_a_one_line_error(tmp_path, text):
    path = write(tmp_path, text, "bad.yaml")
    with pytest.raises(ConfigError) as e:
        config.load(path)
    msg = str(e.value)
    assert "bad.yaml" in msg and "YAML" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("text, where, line", [
    ("model:\n  hidden: 16\n x: 2\n", "3:2", "' x: 2'"),
    ("model:\n\thidden: 16\n", "2:1", "'\\thidden: 16'"),
    ("data:\n  batch: 4\n  window: [16\n", "4:1", "(at the end of the file)"),
])
def test_a_yaml_syntax_error_names_file_line_column_and_shows_the_line(tmp_path, text, where, line):
    """Issue 18, item 13: where the error is, as an editor wants it (FILE:LINE:COLUMN), and the line."""
    path = write(tmp_path, text, "bad.yaml")
    with pytest.raises(ConfigError) as e:
        config.load(path)
    message = str(e.value)
    assert message.startswith(f"{path}:{where}: not valid YAML: ") and message.endswith(line), message
    assert "\n" not in message


def test_the_cli_reports_a_yaml_syntax_error_on_one_line(tmp_path, corpus):
    from conftest import run_cli

    path = write(tmp_path, "model:\n  hidden: 16\n x: 2\n", "bad.yaml")
    code, _, err = run_cli("train", corpus, "--config", path)
    assert code == 1 and err == (f"error: {path}:3:2: not valid YAML: expected <block end>, but found "
                                 f"'<block mapping start>' (while parsing a block mapping): ' x: 2'\n")


@pytest.mark.parametrize("text", ["- model\n- data\n", "just a string\n", "42\n", "model: 3\n",
                                  "model:\n  - hidden\n"])
def test_yaml_of_the_wrong_shape_is_an_error(tmp_path, text):
    with pytest.raises(ConfigError) as e:
        config.load(write(tmp_path, text))
    assert "mapping" in str(e.value) and "\n" not in str(e.value)


def test_missing_file_is_a_one_line_error(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as e:
        config.load(path)
    msg = str(e.value)
    assert "nope.yaml" in msg and "\n" not in msg


def test_directory_as_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.load(tmp_path)
    assert "\n" not in str(e.value)


def test_config_file_not_utf8_is_a_config_error(tmp_path):
    """A Latin-1 comment in a config file is a user's mistake: it should be a one-line ConfigError naming the file,
    not a UnicodeDecodeError escaping from load()."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("model:\n  cell: gru  # caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError) as e:
        config.load(path)
    assert "latin1.yaml" in str(e.value) and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------ validate


@pytest.mark.parametrize("overrides, fragment", [
    (["data.batch=0"], "data.batch"),
    (["data.window=0"], "data.window"),
    (["model.hidden=-1"], "model.hidden"),
    (["model.layers=0"], "model.layers"),
    (["data.val_streams=0"], "data.val_streams"),
    (["train.log_every=0"], "train.log_every"),
    (["optim.decay_every=0"], "optim.decay_every"),
    (["train.steps=-1"], "train.steps"),
    (["optim.warmup=-1"], "optim.warmup"),
    (["optim.decay_steps=-1"], "optim.decay_steps"),
    (["optim.decay_steps=100"], "set optim.schedule step, not constant"),
    (["optim.decay_steps=100", "optim.schedule=cosine"], "set optim.schedule step, not cosine"),
    (["model.dropout=1.0"], "model.dropout"),
    (["model.dropout=-0.1"], "model.dropout"),
    (["model.decoder_dropout=1"], "model.decoder_dropout"),
    (["data.val_fraction=1.0"], "data.val_fraction"),
    (["optim.lr=0"], "optim.lr"),
    (["optim.lr=-1e-3"], "optim.lr"),
    (["optim.eps=0"], "optim.eps"),
    (["optim.clip=-1"], "clip"),
    (["optim.betas=[0.9, 1.0]"], "optim.betas"),
    (["optim.momentum=1.0"], "optim.momentum"),
    (["optim.alpha=1.5"], "optim.alpha"),
    (["optim.nesterov=true"], "nesterov"),
    (["optim.nesterov=true", "optim.momentum=0"], "nesterov"),
    (["model.cell=rnn", "model.forget_bias=1.0"], "forget_bias"),
    (["model.cell=rnn", "model.chrono=100"], "model.chrono needs a gated cell"),
    (["model.chrono=100", "model.forget_bias=1.0"], "leave model.forget_bias null"),
    (["model.chrono=1"], "model.chrono must be"),
    (["model.nonlinearity=relu"], "needs the rnn cell"),
    (["model.cell=rnn", "model.nonlinearity=sigmoid"], "the rnn cell takes tanh, relu"),
    (["model.chrono=-5"], "model.chrono must be"),
    (["train.time_budget=ten minutes"], "time budget"),
    (["train.time_budget=5x"], "time budget"),
])
def test_invalid_combinations_are_errors(overrides, fragment):
    with pytest.raises(ConfigError) as e:
        config.load(overrides=overrides)
    assert fragment in str(e.value)


def test_validate_directly():
    cfg = Config()
    config.validate(cfg)
    cfg.data.batch = 0
    with pytest.raises(ConfigError, match="data.batch"):
        config.validate(cfg)
    cfg = Config()
    cfg.model.cell, cfg.model.forget_bias = "rnn", 1.0
    with pytest.raises(ConfigError, match="forget_bias"):
        config.validate(cfg)
    cfg.model.cell = "gru"
    config.validate(cfg)
    cfg = Config()
    cfg.optim.nesterov, cfg.optim.momentum = True, 0.9
    config.validate(cfg)
    cfg.train.time_budget = "1h30m"
    config.validate(cfg)
    cfg.train.time_budget = "soon"
    with pytest.raises(ConfigError):
        config.validate(cfg)


@pytest.mark.parametrize("overrides", [["model.forget_bias=1.0"], ["model.cell=gru", "model.forget_bias=1.0"],
                                       ["model.dropout=0.5", "model.decoder_dropout=0.99"], ["optim.clip=0"],
                                       ["train.steps=0"], ["data.val_fraction=0"], ["optim.name=sgd",
                                       "optim.momentum=0.9", "optim.nesterov=true"]])
def test_valid_edge_values_are_accepted(overrides):
    config.load(overrides=overrides)


@pytest.mark.parametrize("override", ["optim.lr=nan", "optim.lr=.nan", "optim.eps=nan", "optim.clip=.nan"])
def test_nan_is_not_a_valid_rate(override):
    """validate() promises lr and eps positive and clip not negative; NaN is none of these, but `nan <= 0` is
    False so NaN slips through the checks."""
    with pytest.raises(ConfigError):
        config.load(overrides=[override])


@pytest.mark.parametrize("override", ["model.forget_bias=nan", "model.forget_bias=.nan", "model.forget_bias=inf",
                                      "model.forget_bias=-.inf", "model.open_gates=nan", "model.open_gates=inf"])
def test_a_gate_bias_that_is_not_finite_is_refused(override):
    """Issue 31: a NaN or infinite initial bias passed validation, and training then failed at step 1 with
    a loss of nan and advice to lower the learning rate. It is refused with the key named."""
    key = override.split("=")[0]
    with pytest.raises(ConfigError, match=f"^{key} must be a finite number or null, not "):
        config.load(overrides=[override])


def test_a_gate_bias_that_is_not_finite_is_one_line_before_anything_is_written(cli, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("some text to train on\n" * 50)
    code, _, err = cli("train", text, "--out", tmp_path / "run", "--set", "model.forget_bias=nan")
    assert code == 1 and err == "error: model.forget_bias must be a finite number or null, not nan\n"
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("budget", ["-5", "-1m", "nan"])
def test_negative_or_nan_time_budget_is_an_error(budget):
    """A time budget is a length of time: a negative one stops training before the first step, a NaN one never
    stops it (time >= nan is always False). Both should be ConfigErrors."""
    with pytest.raises(ConfigError):
        config.load(overrides=[f"train.time_budget={budget}"])


# ------------------------------------------------------------------------------------------ durations


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("1h30m", 5400), ("1.5h", 5400),
                                           ("45", 45), ("2.5", 2.5), (" 10m ", 600), ("1h 30m 15s", 5415),
                                           ("1h", 3600), ("0.5m", 30), ("2m30s", 150), (120, 120)])
def test_parse_duration(text, seconds):
    got = config.parse_duration(text)
    assert isinstance(got, float)
    assert got == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["ten minutes", "", "   ", "5x", "h", "m", "1h30", "10 min", "30m1h", "1d",
                                  "1.h", "m10"])
def test_parse_duration_rejects(text):
    with pytest.raises(ConfigError) as e:
        config.parse_duration(text)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------- dump


def custom_config():
    return config.load(overrides=[
        "model.cell=gru", "model.hidden=48", "model.forget_bias=1.5", "model.dropout=0.25",
        "data.batch=3", "data.random_offset=false", "data.encoding=latin-1", "data.errors=replace",
        "optim.name=sgd", "optim.lr=3e-3", "optim.eps=1e-10", "optim.betas=[0.8, 0.9]", "optim.momentum=0.9",
        "optim.nesterov=true", "optim.schedule=cosine",
        "train.time_budget=1h30m", "train.seed=7", "train.cloze=cloze file.tsv", "train.on_save_error=continue",
    ])


@pytest.mark.parametrize("make", [Config, custom_config], ids=["defaults", "custom"])
def test_dump_round_trips(make):
    cfg = make()
    text = config.dump(cfg)
    mapping = yaml.safe_load(text)
    assert isinstance(mapping, dict)
    assert set(mapping) == set(config.SECTIONS)
    back = config.update(Config(), mapping)
    assert back == cfg
    assert isinstance(back.optim.betas, tuple)


@pytest.mark.parametrize("make", [Config, custom_config], ids=["defaults", "custom"])
def test_dump_comments_every_key(make):
    cfg = make()
    lines = config.dump(cfg).splitlines()
    keys = [line for line in lines if line.startswith("  ")]
    sections = [line for line in lines if not line.startswith(" ")]
    assert sections == [f"{s}:" for s in config.SECTIONS]
    expected = [name for s in config.SECTIONS for name in field_names(s)]
    assert [line.split(":")[0].strip() for line in keys] == expected
    for line in keys:
        assert "  # " in line and line.split("  # ", 1)[1].strip(), line


def test_dump_is_the_value_not_a_string():
    text = config.dump(Config())
    assert "  hidden: 256  # " in text
    assert "  betas: [0.9, 0.999]  # " in text
    assert "  forget_bias: null  # " in text
    assert "..." not in text


def test_dump_round_trips_a_long_path_with_spaces():
    """train.cloze may be any path. yaml.safe_dump folds a plain scalar longer than its 80-column width at a space,
    so dump() writes the value over two lines: the comment lands on the second line and the continuation line
    breaks the mapping (the file train writes as RUN_DIR/config.yaml can no longer be read back)."""
    cfg = Config()
    cfg.train.cloze = "/home/user/My Documents/some rather long folder name/another long folder name/cloze file.tsv"
    assert len(cfg.train.cloze) > 90
    text = config.dump(cfg)
    key_lines = [line for line in text.splitlines() if line.startswith("  ")]
    for line in key_lines:
        assert "  # " in line, line
    assert config.update(Config(), yaml.safe_load(text)) == cfg


@settings(max_examples=30, deadline=None)
@given(hidden=st.integers(1, 10**6), lr=st.floats(1e-9, 10.0), dropout=st.floats(0.0, 0.999),
       betas=st.tuples(st.floats(0.0, 0.999999), st.floats(0.0, 0.999999)),
       cloze=st.none() | st.text(max_size=40), budget=st.sampled_from([None, "90s", "10m", "1h30m", "1.5h", "45"]),
       forget_bias=st.none() | st.floats(-10, 10), offset=st.booleans())
def test_dump_round_trips_property(hidden, lr, dropout, betas, cloze, budget, forget_bias, offset):
    cfg = Config()
    cfg.model.hidden, cfg.model.dropout, cfg.model.forget_bias = hidden, dropout, forget_bias
    cfg.optim.lr, cfg.optim.betas = lr, betas
    cfg.train.cloze, cfg.train.time_budget = cloze, budget
    cfg.data.random_offset = offset
    config.validate(cfg)
    assert config.update(Config(), yaml.safe_load(config.dump(cfg))) == cfg


# ---------------------------------------------------------------------------------------- dict forms


@pytest.mark.parametrize("make", [Config, custom_config], ids=["defaults", "custom"])
def test_to_dict_from_dict_round_trip(make):
    cfg = make()
    d = config.to_dict(cfg)
    assert set(d) == set(config.SECTIONS)
    assert d["optim"]["betas"] == list(cfg.optim.betas)
    assert yaml.safe_load(yaml.safe_dump(d)) == d  # plain data, storable in a checkpoint
    back = config.from_dict(d)
    assert back == cfg and back is not cfg
    assert isinstance(back.optim.betas, tuple)


def test_from_dict_checks_keys():
    d = config.to_dict(Config())
    d["model"]["size"] = 3
    with pytest.raises(ConfigError, match="model.size"):
        config.from_dict(d)


def test_update_returns_the_same_object_and_rejects_non_mapping():
    cfg = Config()
    assert config.update(cfg, {"model": {"hidden": 8}}) is cfg and cfg.model.hidden == 8
    with pytest.raises(ConfigError, match="mapping"):
        config.update(Config(), ["model"])
    with pytest.raises(ConfigError, match="mapping"):
        config.update(Config(), {"model": [1, 2]})
    assert config.update(Config(), {"model": None}) == Config()


def test_dump_of_lr_is_exact():
    cfg = config.load(overrides=["optim.lr=1e-8", "optim.eps=1.5e-12", "optim.min_lr=1e-300"])
    back = config.update(Config(), yaml.safe_load(config.dump(cfg)))
    assert back.optim.lr == 1e-8 and back.optim.eps == 1.5e-12 and back.optim.min_lr == 1e-300
    assert not math.isnan(back.optim.lr)


def test_a_device_other_than_the_cpu_needs_the_torch_engine():
    with pytest.raises(ConfigError) as e:
        config.load(overrides=["train.device=cuda"])
    assert str(e.value) == ("train.device cuda needs train.engine torch; the numpy engine runs on the CPU "
                            "(--device cpu)")
    assert config.load(overrides=["train.engine=torch", "train.device=mps"]).train.device == "mps"  # checked at start

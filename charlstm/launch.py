"""From `charlstm train`'s arguments to a Trainer: the layers of the configuration (defaults, a preset or
file, flags, --set), the rooms demo when no corpus is given, and what a resumed run may change.
"""

import copy
import dataclasses
import os
import pathlib
import sys

from . import checkpoint, engine, optim, presets
from . import config as config_mod
from .configfile import read_file
from .errors import ConfigError
from .rundir import default_run_dir
from .train import Trainer

def prepare(corpus, config_path=None, out=None, resume=None, flags=None, overrides=(), val=None, force=False,
            quiet=False):
    """A Trainer from command-line arguments. config_path: a preset name, a YAML file or a config.Config. flags:
    {"section.key": value or None}, applied before the --set overrides. With no corpus and no resume: the
    rooms demo (charlstm/assets: data/rooms-names-train.txt, the rooms-names-quick preset). The Trainer's
    `origins` say where each key's value came from (default, preset, file, flag, --set), for --dry-run."""
    flag_map = config_mod.nested({key: value for key, value in (flags or {}).items() if value is not None})
    set_map = config_mod.parse_overrides(overrides)
    mapping = {section: {**flag_map.get(section, {}), **set_map.get(section, {})}  # --set last
               for section in {*flag_map, *set_map}}
    quiet = quiet or not engine.is_main_process()  # under torchrun, rank 0 speaks for all
    say = None if quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    if resume:
        cfg = resume_config(resume, mapping, say)
        check_trains(cfg)
        saved = config_mod.to_dict(cfg)
        saved["train"].pop("time_budget")  # one session's: not the run's
        origins = config_mod.origins([(f"the run ({resume})", saved), ("flag", flag_map), ("--set", set_map)])
        return Trainer(cfg, corpus, resume, val_source=val, resume=True, quiet=quiet, origins=origins)
    run_name, demo = None, {}
    if not corpus:
        from . import assets

        corpus, config_path, run_name = (str(assets.CORPUS),), config_path or assets.CONFIG.stem, "rooms"
        demo = {"train": {"cloze": str(assets.CLOZE)}}
        if say:
            say(f"no corpus given: training on the rooms stories with new names ({assets.CORPUS.name}) with "
                f"{pathlib.Path(config_path).stem}, scored on names it never saw ({assets.CLOZE.name})")
    layers = []
    if isinstance(config_path, config_mod.Config):  # a config built in code (api.trainer): what it changes
        layers.append(("the config", _changes(config_path)))
    elif config_path is not None:
        path, label = presets.locate(config_path)
        layers.append((label, read_file(path)))
    layers += [("rooms demo", demo), ("flag", flag_map), ("--set", set_map)]
    cfg = config_mod.Config()
    for label, layer in layers:
        config_mod.update(cfg, layer, source=label, check=False)
    config_mod.validate(cfg)
    check_trains(cfg)
    if cfg.train.cloze:
        cfg.train.cloze = os.path.abspath(cfg.train.cloze)  # a resumed run may start elsewhere
    if cfg.model.init_from:  # a resumed run may start elsewhere; finetune.py reads it when the run starts
        cfg.model.init_from = os.path.abspath(cfg.model.init_from)
        if not os.path.exists(cfg.model.init_from):
            raise ConfigError(f"model.init_from: no checkpoint or run directory at {cfg.model.init_from}")
    return Trainer(cfg, corpus, out or default_run_dir(corpus, name=run_name), val_source=val, quiet=quiet,
                   force=force, origins=config_mod.origins(layers))


def _changes(cfg):
    """{section: {key: value}} of the keys of a config.Config whose values differ from the defaults: a
    config built in code, as a layer whose origins name what it changed."""
    ours, default = config_mod.to_dict(cfg), config_mod.to_dict(config_mod.Config())
    found = {section: {k: v for k, v in values.items() if v != default[section][k]} for section, values in ours.items()}
    return {section: values for section, values in found.items() if values}


def check_trains(cfg):
    """A run that cannot train a step is refused before anything is created: train.steps 0, or a time
    budget of nothing, would write a run directory of an untrained model and exit 0."""
    if cfg.train.steps == 0:
        raise ConfigError("--steps 0 (train.steps) trains nothing; give at least 1 step")
    if cfg.train.time_budget is not None and config_mod.parse_duration(cfg.train.time_budget) == 0:
        raise ConfigError(f"--time-budget {cfg.train.time_budget} (train.time_budget) leaves no time to train a "
                          f"step; give a duration such as 90s or 10m, or none to train train.steps steps")


def resume_config(run_dir, overrides, say=None):
    """The config of the run in run_dir with overrides applied. The model, the data and what shapes the
    optimizer state (optim.frozen_on_resume) or the random streams (train.seed) cannot change; a time
    budget applies to one session, so it is dropped unless given again. A run already at its train.steps
    is an error that says how to extend it."""
    if pathlib.Path(run_dir).is_file():  # a checkpoint or a corpus given for the run directory
        raise ConfigError(f"--resume takes a run's directory, and {run_dir} is a file"
                          + (f" (its run: {pathlib.Path(run_dir).parent})" if str(run_dir).endswith(".npz") else ""))
    if not pathlib.Path(run_dir).exists():
        raise ConfigError(f"--resume: no run directory {run_dir}")
    latest = checkpoint.load(pathlib.Path(run_dir) / "latest.npz")
    saved = latest.config
    cfg = copy.deepcopy(saved)
    cfg.train.time_budget = None
    config_mod.update(cfg, overrides, source="--set")
    changed = [f"{section}.{key}" for section in ("model", "data", "train", "optim")
               for key, value in dataclasses.asdict(getattr(cfg, section)).items()
               if value != dataclasses.asdict(getattr(saved, section))[key]]
    frozen = ("train.seed", *(f"optim.{key}" for key in optim.frozen_on_resume()))
    for key in changed:
        if key.split(".")[0] in ("model", "data") or key in frozen:
            raise ConfigError(f"{key} cannot change when resuming; the other train.* and optim.* keys can")
    if cfg.train.steps <= latest.step:
        raise ConfigError(_nothing_left(run_dir, latest.step, saved.train.steps,
                                        given="steps" in (overrides.get("train") or {}), steps=cfg.train.steps))
    if "train.steps" in changed and cfg.optim.schedule == "cosine" and say is not None:
        say(f"note: the cosine schedule now spans {cfg.train.steps} steps instead of {saved.train.steps}: "
            f"the learning rate changes from here on, unlike in a run started with {cfg.train.steps}")
    return cfg


def _nothing_left(run_dir, step, planned, given, steps):
    """The message for a resume with no step left to train."""
    where = (f"is already at step {step:,}, so --steps {steps:,} leaves nothing to train" if given
             else f"has finished: it is at step {step:,} of {planned:,}")
    more = planned if planned > step else 2 * max(step, 1)
    return (f"{run_dir} {where}; to train it further give a larger total, e.g. "
            f"charlstm train --resume {run_dir} --steps {more}")

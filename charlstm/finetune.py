"""Fine-tuning: a run that starts from another model's weights (model.init_from, `train --init-from`).

The checkpoint fixes the model: its cell, layers and width (with a vanilla RNN's nonlinearity and a
pointer's width) become the run's; a different value given for one of them with --set is an error
naming it, and one that a preset or file gives yields, with a note. The vocabulary is the union of the
checkpoint's characters and the new text's (data.load_corpus), so the fine-tuned model still reads
everything the first one did. A character both know keeps its weights; one the checkpoint lacks starts
as in a fresh model. Only the weights carry over: the optimizer's state starts from zero and the
schedule is the new run's.
"""

import os

import numpy as np

from . import checkpoint
from .errors import CheckpointError, ConfigError
from .vocab import describe_chars

SHAPE_KEYS = ("cell", "hidden", "layers", "nonlinearity", "pointer")  # model.* keys the checkpoint fixes
EXAMPLES = 5  # added characters a note names


def load_source(path):
    """The checkpoint a fine-tuned run starts from (a file, or the better of a run directory's two); a
    ConfigError naming model.init_from when there is none or it is damaged."""
    if not os.path.exists(path):
        raise ConfigError(f"model.init_from: no checkpoint or run directory at {path}")
    try:
        return checkpoint.load(path)
    except CheckpointError as e:
        raise ConfigError(f"model.init_from: {e}") from None


def adopt_shape(cfg, source, origins=None):
    """Give cfg (in place) the checkpoint's cell, layers and width; returns the notes to say. origins:
    {"section.key": where its value came from}. A key set on its own (a flag, --set) that differs from
    the checkpoint's is a ConfigError naming it; one a preset or file sets along with everything else
    gives way to the checkpoint's, with a note. Without origins (a config built in code), a value that
    differs from the default counts as set on its own. origins then name model.init_from for these keys."""
    from .config import ModelConfig

    default, theirs, notes = ModelConfig(), source.config.model, []
    for key in SHAPE_KEYS:
        ours, wanted = getattr(cfg.model, key), getattr(theirs, key)
        if origins is not None:
            origin = origins.get(f"model.{key}", "default")
        else:
            origin = "default" if ours == getattr(default, key) else "the config"
        if origin != "default" and ours != wanted:
            if origin in ("flag", "--set", "the config"):
                raise ConfigError(f"model.{key}={ours} ({origin}) conflicts with model.init_from: {source.path} "
                                  f"has model.{key}={wanted}, and a fine-tuned run keeps its checkpoint's cell, "
                                  f"layers and width; leave model.{key} out")
            notes.append(f"note: model.{key} is {wanted}, the checkpoint's, not {ours} ({origin})")
        setattr(cfg.model, key, wanted)
        if origins is not None:
            origins[f"model.{key}"] = "model.init_from"
    return notes


def origin(source):
    """What a fine-tuned run's checkpoints record of the one it started from (meta "init_from"): its path,
    step, corpus fingerprint and config, and its own origin if it was fine-tuned too, so that a model made
    in stages can be traced, and checked, from its last file alone."""
    meta = source.meta
    record = {"path": str(source.path), "step": source.step, "config": meta.get("config"),
              "corpus_sha256": (meta.get("corpus") or {}).get("sha256")}
    if meta.get("init_from"):
        record["init_from"] = meta["init_from"]
    return record


def note(source, vocab):
    """The line a fine-tuned run starts with: the checkpoint, and the characters the new text added."""
    added = [c for c in vocab.chars if c not in source.vocab.index]
    m = source.config.model
    shape = f"{m.cell.upper()}, {m.layers} layer{'s' * (m.layers != 1)} of {m.hidden} units"
    what = (f"the new text adds {len(added)} character{'s' * (len(added) != 1)} to its {len(source.vocab)} "
            f"({describe_chars(added, EXAMPLES)}), which start as in a fresh model" if added
            else f"the new text adds no character to its {len(source.vocab)}")
    return f"note: fine-tuning {source.path} (step {source.step:,}; {shape}): {what}"


def warm_start(params, spec, vocab, source):
    """Overwrite params (in place, freshly initialised for `vocab`) with the checkpoint's weights. A
    character both vocabularies know keeps its input column, decoder row and bias, wherever it now sits;
    one the checkpoint lacks keeps its fresh initialisation, as in a model trained from scratch. (Starting
    the new characters' biases as low as the checkpoint's least likely character's instead made no
    difference that lasted 20 steps in the fine-tuning measured in docs/training.md.)"""
    s = source.spec
    if (s.cell, s.hidden, s.layers, s.nonlinearity, s.pointer) != (spec.cell, spec.hidden, spec.layers,
                                                                    spec.nonlinearity, spec.pointer):
        raise ConfigError(f"model.init_from: {source.path} holds {s.layers} x {s.hidden} {s.cell} units "
                          f"({s.nonlinearity}); this run has {spec.layers} x {spec.hidden} {spec.cell} units "
                          f"({spec.nonlinearity})")
    old_index = source.vocab.index
    new_ids = np.array([i for i, c in enumerate(vocab.chars) if c in old_index], dtype=np.intp)
    if not len(new_ids):
        raise ConfigError(f"model.init_from: {source.path} knows none of this corpus's characters")
    old_ids = np.array([old_index[vocab.chars[i]] for i in new_ids], dtype=np.intp)  # the same characters there
    for name, value in source.params.items():
        if name == f"{spec.cell}.weight_ih_l0":  # (G, V): a column per input character
            params[name][:, new_ids] = value[:, old_ids]
        elif name in ("decoder.weight", "decoder.bias"):  # (V, H) and (V,): a row per output character
            params[name][new_ids] = value[old_ids]
        else:
            params[name][...] = value

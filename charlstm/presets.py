"""The shipped configurations, by name: `charlstm train book.txt --config shakespeare`.

Every configs/*.yaml is a preset named after its file. charlstm/assets/presets is a symbolic link to
configs/ in the repository, and a wheel holds copies of the files (pyproject.toml's package data), so a
new file in configs/ is a new preset, installed or not, with no change to the code.
"""

import pathlib

from .errors import ConfigError

DIRECTORY = pathlib.Path(__file__).resolve().parent / "assets" / "presets"


def names():
    """The preset names, sorted."""
    return sorted(p.stem for p in DIRECTORY.glob("*.yaml"))


def locate(name):
    """--config's argument -> (path of the YAML file, label for --dry-run). An existing file is a file;
    otherwise a bare name (with or without .yaml) is a preset, and anything else a missing file."""
    path = pathlib.Path(name)
    if path.exists():
        return path, f"file {name}"
    stem = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if "/" not in name and (DIRECTORY / f"{stem}.yaml").is_file():
        return DIRECTORY / f"{stem}.yaml", f"preset {stem}"
    hint = f"presets: {', '.join(names())}"
    if "/" in name or name.endswith((".yaml", ".yml")):
        raise ConfigError(f"cannot read config {name}: no such file ({hint}, named without a path)")
    raise ConfigError(f"no preset or file named {name!r} ({hint})")

"""Reading a YAML config file into the mapping config.update takes: a file that cannot be read, is not
UTF-8 or is not valid YAML is a ConfigError of one line, which for a syntax error names FILE:LINE:COLUMN
and shows the line. What the keys mean and which are valid is config.py's business.
"""

import yaml

from .errors import ConfigError


def read_file(path):
    """The mapping in a YAML config file ({} if it is empty); a ConfigError if it cannot be read or parsed,
    which for a syntax error names file:line:column and shows the line."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config {path} is not UTF-8 (byte offset {e.start})") from None
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(yaml_error(path, text, e)) from None


def yaml_error(path, text, error):
    """One line for a YAML error: "FILE:LINE:COLUMN: not valid YAML: what (while what): 'the line'"."""
    mark = getattr(error, "problem_mark", None)
    if mark is None:  # a reader error (a control character, say) has a position only
        position = getattr(error, "position", None)
        if position is None:
            return f"config {path} is not valid YAML: {str(error).splitlines()[0]}"
        line = text.count("\n", 0, position)
        column = position - (text.rfind("\n", 0, position) + 1)
        problem = "a character YAML does not allow"
    else:
        line, column, problem = mark.line, mark.column, error.problem or "syntax error"
    context = getattr(error, "context", None)
    what = f"{problem} ({context})" if context else problem
    lines = text.splitlines()
    shown = f": {lines[line][:120]!r}" if line < len(lines) else " (at the end of the file)"
    return f"{path}:{line + 1}:{column + 1}: not valid YAML: {what}{shown}"

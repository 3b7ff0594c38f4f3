"""The exceptions charlstm raises for problems a user can fix.

Every message is written for the person at the terminal: the CLI prints it on one line, prefixed with
"error:", and exits non-zero. Asserts, by contrast, guard internal invariants only.
"""


class CharlstmError(Exception):
    """Base class: a problem with the user's input, files or settings."""


class ConfigError(CharlstmError):
    """An unknown key, a wrong type or an impossible value in a configuration."""


class DataError(CharlstmError):
    """A corpus or prompt that cannot be used: unreadable, badly encoded, empty, too short, unknown characters."""


class CheckpointError(CharlstmError):
    """A checkpoint that is missing, truncated, corrupt, foreign or inconsistent."""


class TrainingError(CharlstmError):
    """Training cannot go on, for instance because the loss became NaN or infinite."""


class Interrupted(CharlstmError):
    """Training stopped on SIGINT or SIGTERM (after saving, unless aborted); carries the exit status."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code  # 130 for SIGINT, 143 for SIGTERM

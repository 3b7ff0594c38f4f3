"""The prompt loop of `charlstm sample -i`: read a line at the terminal, complete it, read the next.

Lines are read through the standard library's readline where it exists (line editing, and the history
of the session on the arrow keys), with the prompt on the terminal; completions go to stdout as they are
made, as `charlstm sample PROMPT` writes them, so `charlstm sample -i > talk.txt` keeps them and the
terminal still shows the prompts. A line that starts with ':' is a command:

    :set temperature 0.5     change an option for the lines that follow (:set alone lists them;
                             :set one-line on ends each completion at the end of its line)
    :help                    the commands and options
    :quit                    leave (as Ctrl-D does)

Ctrl-C cancels the completion being written, or the line being typed, and the loop goes on.
"""

import math
import os
import re
from dataclasses import dataclass

from .errors import CharlstmError
from .sample import Options
from .streams import Writer

PROMPT = "> "
BANNER = ("Type a prompt and press Enter (___ marks a blank to fill); :set temperature 0.5 changes an option, "
          ":help lists them; Ctrl-C stops a completion, Ctrl-D or :quit leaves.")


class SettingError(CharlstmError):
    """A :set that names no option or gives it a value it cannot take."""


def _number(kind, low, low_open=False, high=None):
    """A parser for a number in [low, high] (low excluded if low_open), finite."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise SettingError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        too_high = high is not None and value > high
        if not math.isfinite(value) or value < low or (low_open and value == low) or too_high:
            bound = f"{'above' if low_open else 'at least'} {low:g}"
            bound += "" if high is None else f" and at most {high:g}"
            raise SettingError(f"{text!r} is out of range: give a number {bound}")
        return value
    return parse


def _flag(text):
    value = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}
    if text.lower() not in value:
        raise SettingError(f"{text!r} is not on or off")
    return value[text.lower()]


def _choice(*choices):
    def parse(text):
        if text not in choices:
            raise SettingError(f"{text!r} is not one of {', '.join(choices)}")
        return text
    return parse


# name: (the Settings attribute, parser, help); the names are those of `charlstm sample`'s options
OPTIONS = {
    "length": ("length", _number(int, 0), "most characters per sample (-n)"),
    "temperature": ("temperature", _number(float, 0, low_open=True), "below 1 safer, above 1 wilder (-t)"),
    "top-k": ("top_k", _number(int, 0), "sample among the K likeliest characters; 0: all"),
    "top-p": ("top_p", _number(float, 0, low_open=True, high=1), "sample among the likeliest holding probability P"),
    "greedy": ("greedy", _flag, "on: always the likeliest character"),
    "until": ("until", None, "stop after this text, \\n a newline (:set until with nothing after it: no stop)"),
    "one-line": ("one_line", _flag, "on: each completion ends at the end of its line, as with prompts from a pipe"),
    "num-samples": ("num_samples", _number(int, 1), "samples per prompt"),
    "seed": ("seed", _number(int, 0), "the next sample's seed; each sample after it takes the next one"),
    "unknown": ("unknown", _choice("error", "skip"), "characters the model lacks: error, or skip them"),
}
ALIASES = {"n": "length", "t": "temperature"}


@dataclass
class Settings:
    """What each line is completed with: `charlstm sample`'s options, changed by :set as the loop goes."""

    length: int = 200
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    greedy: bool = False
    until: tuple = ()
    one_line: bool = False  # stop at a newline (not written), as prompts read from a pipe do
    num_samples: int = 1
    seed: int = 0  # the next sample's; it moves on by one per sample drawn
    unknown: str = "error"

    def options(self):
        return Options(length=self.length, temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                       greedy=self.greedy, until=self.until, stop_at_newline=self.one_line, unknown=self.unknown)


def talk(model, settings, read_line, say, out, fmt="text", batch=64):
    """`charlstm sample -i`: the loop, each line completed by model (api.Model) with the settings, the
    samples written to out as they are made (a blank line between two samples of one line, jsonl records
    in --format jsonl). A completion cut by Ctrl-C keeps what was written and ends its line."""
    out = _LineTracked(out)

    def complete(line, s):
        writer = Writer(out, model.vocab, fmt, "\n", None if s.greedy else s.seed, tty=out.isatty())
        try:
            return model.complete([[line]], s.options(), s.seed, writer, s.num_samples, batch, say)
        except KeyboardInterrupt:
            writer.interrupted()  # jsonl: the samples as far as they got
            out.end_line()
            raise

    Session(settings, complete, read_line, say).run()


class _LineTracked:
    """stdout, remembering whether what was written ends a line, so that a cancelled completion can."""

    def __init__(self, stream):
        self.stream, self.at_line_start = stream, True

    def write(self, text):
        if text:
            self.stream.write(text)
            self.at_line_start = text.endswith("\n")

    def end_line(self):
        if not self.at_line_start:
            self.write("\n")
        self.flush()

    def flush(self):
        self.stream.flush()

    def isatty(self):
        return self.stream.isatty()


class Session:
    """The loop. settings: a Settings, which complete(line, settings) reads; complete writes the line's
    completions and returns how many samples it drew (the seed moves on by that many). read_line(prompt)
    returns a line, raising EOFError at the end; say(message) writes a message for the user."""

    def __init__(self, settings, complete, read_line, say):
        self.settings, self.complete, self.read_line, self.say = settings, complete, read_line, say

    def run(self):
        """Read and answer lines until Ctrl-D or :quit."""
        self.say(BANNER)
        while True:
            try:
                line = self.read_line(PROMPT)
            except EOFError:  # Ctrl-D: the shell's prompt goes on a line of its own
                self.say("")
                return
            except KeyboardInterrupt:  # Ctrl-C while typing: drop the line, as a shell does
                self.say("")
                continue
            if line.strip().startswith(":"):
                if self.command(line.strip()[1:]) == "quit":
                    return
                continue
            try:
                self.settings.seed += self.complete(line, self.settings)
            except KeyboardInterrupt:
                self.say("(cancelled)")
            except CharlstmError as e:
                self.say(f"error: {e}")

    def command(self, text):
        """Run a command (the text after ':'); returns "quit" to leave."""
        words = text.split(None, 2)  # the name, the option and its value as typed (spaces and backslashes kept)
        name, args = (words[0].lower(), words[1:]) if words else ("help", [])
        if len(args) == 2 and len(args[1]) >= 2 and args[1][0] == args[1][-1] and args[1][0] in "'\"":
            args[1] = args[1][1:-1]  # :set until ' ' -- quotes keep spaces at the ends
        if name in ("q", "quit", "exit"):
            return "quit"
        if name == "set" and args:
            try:
                self.set(args[0], args[1] if len(args) > 1 else None)
            except SettingError as e:
                self.say(f"error: {e}")
        elif name in ("set", "show"):
            for key in OPTIONS:
                self.say(f"  {key:<12} {self._shown(key)}")
        elif name in ("help", "h", "?"):
            self.say("commands: :set OPTION VALUE, :set (the options now), :help, :quit; options:")
            for key, (_, _, doc) in OPTIONS.items():
                self.say(f"  {key:<12} {doc} [now: {self._shown(key)}]")
        else:
            self.say(f"error: unknown command :{name}; the commands are :set, :help and :quit")
        return None

    def set(self, name, text):
        """:set NAME VALUE: the option changed, or a SettingError that says why not."""
        key = ALIASES.get(name.lstrip("-").lower(), name.lstrip("-").lower().replace("_", "-"))
        if key not in OPTIONS:
            raise SettingError(f"no option {name!r}; the options are {', '.join(OPTIONS)}")
        attribute, parse, _ = OPTIONS[key]
        if key == "until":
            value = () if text is None else (_unescape(text),)
        elif text is None:
            raise SettingError(f"give a value: :set {key} VALUE")
        else:
            value = parse(text)
        greedy = value if key == "greedy" else self.settings.greedy
        samples = value if key == "num-samples" else self.settings.num_samples
        if greedy and samples > 1:
            raise SettingError("greedy gives the same text every time: with num-samples above 1 it would repeat it; "
                               "set num-samples 1 or greedy off first")
        setattr(self.settings, attribute, value)
        self.say(f"{key} = {self._shown(key)}")

    def _shown(self, key):
        value = getattr(self.settings, OPTIONS[key][0])
        if key in ("greedy", "one-line"):
            return "on" if value else "off"
        if key == "until":
            return repr(value[0]) if value else "(none)"
        return str(value)


def _unescape(text):
    """:set until's text: \\n and \\t as a newline and a tab, two backslashes as one (as --separator)."""
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


def terminal_reader(stdin, stdout, stderr):
    """read_line(prompt) for the terminal: input() with the standard library's readline where it exists
    (line editing and history), the prompt and the typing on the terminal. When stdout is redirected
    (`charlstm sample -i > talk.txt`) and stderr is the terminal, readline writes to stderr's terminal
    while a line is read, so the file gets the completions only."""
    try:
        import readline  # noqa: F401  (input() uses it once it is imported)
    except ImportError:  # Windows, or a Python built without it: the terminal's own line editing
        pass

    def read_line(prompt):
        if stdout.isatty():
            return input(prompt)
        if not stderr.isatty():  # neither is a terminal: no line editing, the prompt on stderr
            stderr.write(prompt)
            stderr.flush()
            return input()
        stdout.flush()
        saved = os.dup(1)
        try:
            os.dup2(stderr.fileno(), 1)  # fd 1 on the terminal while readline reads, so input() uses it
            return input(prompt)
        finally:
            os.dup2(saved, 1)
            os.close(saved)

    return read_line

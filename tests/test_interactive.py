"""`charlstm sample -i`: the prompt loop, driven through a real pseudo-terminal as a user at a keyboard
drives it (the standard library's pty and os; no new dependency), and its commands."""

import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time

import pytest

from charlstm import interactive
from conftest import run_cli

CTRL_A, CTRL_C, CTRL_D, CTRL_P = "\x01", "\x03", "\x04", "\x10"
# CPython's readline acts on a SIGINT only when its wait for a key is interrupted by it: one that lands
# while it is still handling the last key (echoing it) waits for the next key. On a loaded machine a
# Ctrl-C sent the moment the echo arrives hit that window (2 of 6 runs beside three busy processes; the
# process idle in input(), py-spy showed). A person does not type that fast; the test waits as long.
READLINE_SETTLES = 0.5  # seconds
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")


class Terminal:
    """`charlstm ARGS` on the slave side of a pseudo-terminal (its controlling terminal, stdin, stdout and
    stderr; stdout to a file instead when given); typing and reading on the master side."""

    def __init__(self, *args, stdout_path=None):
        env = dict(os.environ, TERM="xterm", COLUMNS="200")
        env.pop("CHARLSTM_DEBUG", None)
        pid, fd = pty.fork()
        if pid == 0:  # the child: becomes charlstm
            try:
                if stdout_path is not None:
                    os.dup2(os.open(stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # pytest started in the background ignores it
                os.execve(sys.executable, [sys.executable, "-m", "charlstm", *map(str, args)], env)
            finally:
                os._exit(127)
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
        self.pid, self.fd, self.seen, self.mark = pid, fd, "", 0

    def type(self, text):
        os.write(self.fd, text.encode())

    def expect(self, pattern, wait=60):
        """Read until the regular expression matches what came after the last match; returns the match.
        wait bounds a hang, it is not a speed test."""
        deadline = time.monotonic() + wait
        while True:
            found = re.search(pattern, self.seen[self.mark :])
            if found:
                self.mark += found.end()
                return found
            if time.monotonic() > deadline or not self._read(deadline - time.monotonic()):
                pytest.fail(f"no {pattern!r} in the terminal after {self.seen[self.mark:][-500:]!r}")

    def _read(self, timeout):
        if not select.select([self.fd], [], [], max(timeout, 0))[0]:
            return False
        try:
            chunk = os.read(self.fd, 1 << 16)
        except OSError:  # EIO: the child has closed the terminal
            return False
        text = ESCAPES.sub("", chunk.decode("utf-8", "replace"))  # readline's bracketed paste, cursor moves
        self.seen += text.replace("\r\n", "\n").replace("\r", "")
        return bool(chunk)

    def exit_status(self, wait=60):
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            self._read(0.1)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        self.kill()
        pytest.fail(f"still running after {wait} s: {self.seen[-500:]!r}")

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except OSError:
            pass


@pytest.fixture
def terminal():
    started = []

    def start(*args, **kwargs):
        started.append(Terminal(*args, **kwargs))
        return started[-1]

    yield start
    for t in started:  # a failed test leaves no charlstm behind
        t.kill()


def test_with_no_prompt_at_a_terminal_each_line_is_completed(terminal, four_run):
    """No prompt, stdin a terminal: the loop, without -i. Blanks are filled, :set changes the length, the
    history recalls a line (Ctrl-P), readline edits one (Ctrl-A: to its start), Ctrl-D leaves."""
    t = terminal("sample", "-c", four_run, "--greedy")
    t.expect(r"Type a prompt.*\n> ")
    t.type("the cat sat on the ___.\r")
    t.expect(r"the cat sat on the mat\.\n> ")
    t.type(":set length 3\r")
    t.expect(r"length = 3\n> ")
    t.type("my fish\r")
    t.expect(r"\nmy fish sw\n> ")
    t.type(CTRL_P + "\r")  # the line before, from the history
    t.expect(r"\nmy fish sw\n> ")
    t.type(":set n 30\r")
    t.expect(r"length = 30\n> ")
    t.type("dog lay on the ___." + CTRL_A + "the \r")  # typed at the start of the line
    t.expect(r"\nthe dog lay on the rug\.\n> ")
    t.type(CTRL_D)
    assert t.exit_status() == 0
    assert "Traceback" not in t.seen


def test_ctrl_c_cancels_a_completion_and_the_loop_goes_on(terminal, four_run):
    t = terminal("sample", "-c", four_run, "-i", "-n", 10**9, "--batch", 1, "--seed", 3)
    t.expect(r"\n> ")
    t.type("the\r")
    t.expect(r"(?:[a-z ]+\.\n){5}")  # sentences keep coming: a long completion is under way
    t.type(CTRL_C)
    t.expect(r"\(cancelled\)\n> ")
    t.type("half a line")
    t.expect("half a line")  # echoed: the line is being read (a Ctrl-C sent with it raced the prompt on a busy machine)
    time.sleep(READLINE_SETTLES)
    t.type(CTRL_C)  # Ctrl-C while typing drops the line
    t.expect(r"\n> ")
    t.type(":set length 12\r")
    t.expect(r"length = 12\n> ")
    t.type(":set greedy on\r")
    t.expect(r"greedy = on\n> ")
    t.type("my fish\r")
    t.expect(r"\nmy fish swam in the\n> ")
    t.type(":set temperature hot\r")
    t.expect(r"error: 'hot' is not a number\n> ")
    t.type(":quit\r")
    assert t.exit_status() == 0
    assert "Traceback" not in t.seen and "Aborted" not in t.seen


def test_with_stdout_redirected_the_file_gets_the_completions_and_the_terminal_the_rest(terminal, four_run,
                                                                                       tmp_path):
    """`charlstm sample -i > talk.txt`: the prompts, the typing and the messages on the terminal (stderr),
    the completions, and nothing else, in the file."""
    talk = tmp_path / "talk.txt"
    t = terminal("sample", "-c", four_run, "-i", "--greedy", stdout_path=talk)
    t.expect(r"Type a prompt.*\n> ")
    t.type("the cat sat on the ___.\r")
    t.expect(r"\n> ")
    t.type(":set until .\r")
    t.expect(r"until = '\.'\n> ")
    t.type(CTRL_P + CTRL_P + "\r")  # the history, with stdout not a terminal
    t.expect(r"the cat sat on the ___\.\n> ")
    t.type(":quit\r")
    assert t.exit_status() == 0
    assert talk.read_text() == "the cat sat on the mat.\n" * 2
    assert "mat." not in t.seen  # not on the terminal


def test_without_a_terminal_prompts_are_read_line_by_line_as_before(four_run):
    lines = "the cat sat on the ___.\nthe dog lay on the ___.\n"
    plain = run_cli("sample", "-c", four_run, "--greedy", input=lines)
    code, out, err = run_cli("sample", "-c", four_run, "--greedy", "-i", input=lines)
    assert plain[0] == code == 0 and out == plain[1] == "the cat sat on the mat.\nthe dog lay on the rug.\n"
    assert err == "note: stdin is not a terminal, so -i reads the prompts from it, one per line\n"
    code, _, err = run_cli("sample", "-c", four_run, "-i", "the")
    assert code == 2 and "give PROMPTS or -i, not both" in err


def test_set_checks_what_the_command_line_checks():
    said = []
    s = interactive.Session(interactive.Settings(), None, None, said.append)
    for line in ("set temperature 0", "set top-p 1.5", "set num-samples 0", "set warmth 2", "set greedy maybe",
                 "set length", "frobnicate"):
        s.command(line)
    assert [m.split(":")[0] for m in said] == ["error"] * 7, said
    assert "no option 'warmth'; the options are length, temperature" in said[3]
    said.clear()
    for line in ("set -t 0.5", "set --top-k 3", "set greedy on", "set num-samples 2", "set until the end"):
        s.command(line)
    assert said[:3] == ["temperature = 0.5", "top-k = 3", "greedy = on"] and said[4] == "until = 'the end'"
    assert said[3].startswith("error: greedy gives the same text every time")
    assert (s.settings.temperature, s.settings.top_k, s.settings.num_samples) == (0.5, 3, 1)
    s.command("set until \\n")  # typed as a backslash and an n: a newline
    assert s.settings.until == ("\n",) and said[-1] == "until = '\\n'"
    assert s.command("quit") == "quit"

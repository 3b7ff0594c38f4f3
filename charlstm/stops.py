"""Stopping a training run on SIGINT or SIGTERM: finish the step, save, validate; abort only when asked.

The first signal asks the loop to stop after the current step, save latest.npz and validate. Ctrl-C
reaches every process of the group and `timeout -s INT` sends two at once, so a second SIGINT never
abandons anything: it says what a third will do. A third aborts what is under way by raising
KeyboardInterrupt: the step or the save (latest.npz keeps the step it had, which --resume continues; a
run saves one at its start) or the final validation.
"""

import os
import signal


class StopRequests:
    """The signals received while a run trains, and what the loop is doing (`phase`), which decides what a
    third Ctrl-C aborts. The handler writes its one message with os.write: a print could land inside
    another write to stderr, and fail there."""

    MESSAGES = {"training": "saving, press Ctrl-C again to abort without saving",
                "saving": "saving, press Ctrl-C again to abort without saving",
                "validating": "saved; validating for best.npz, press Ctrl-C again to skip it"}

    def __init__(self, stream, quiet):
        self.stream, self.quiet = stream, quiet
        self.signal = None  # the first signal, which stopped the run
        self.again = 0  # SIGINTs since then
        self.phase = "training"  # then saving, validating, done (when nothing is left to abort)
        self.aborted = False

    FIRST = "stopping: finishing this step, then saving latest.npz and validating"

    def handle(self, signum, frame):
        if self.signal is None:  # said at once: the step, the save and a long validation can take a while
            self.signal = signum
            self._tell(self.FIRST)
            return
        if signum != signal.SIGINT or self.aborted or self.phase == "done":
            return
        self.again += 1
        if self.again == 1:
            self._tell(self.MESSAGES[self.phase])
        else:
            self.aborted = True
            raise KeyboardInterrupt

    def exit_code(self):
        """The exit status of a run stopped by the first signal: 130 for SIGINT, 143 for SIGTERM."""
        return 130 if self.signal == signal.SIGINT else 143

    def _tell(self, text):
        if self.quiet:
            return
        try:
            fd = self.stream.fileno()
            os.write(fd, (("\n" if os.isatty(fd) else "") + text + "\n").encode())
        except (OSError, ValueError, AttributeError):  # no file descriptor (a test's captured stream)
            pass


class Routed:
    """Routes SIGINT and SIGTERM to a StopRequests while the block runs, then restores the handlers."""

    def __init__(self, stops):
        self.stops = stops
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self.stops.handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, old in self.previous.items():
            signal.signal(sig, old)
        self.previous = {}

"""``clerk-deps emulator`` as a real process, for the command-line tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class EmulatorProcess:
    """A running ``python -m clerk_deps emulator`` and the lines it has printed so far."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []

    def read_until(self, done: Callable[[str], bool]) -> list[str]:
        """Read its output up to the first line for which ``done`` is true; every line read.
        Fails the test, with the process's stderr, if it exits first."""
        assert self.process.stdout is not None
        while not (self.lines and done(self.lines[-1])):
            line = self.process.stdout.readline()
            assert line, self.process.stderr.read() if self.process.stderr else ""
            self.lines.append(line)
        return self.lines

    @property
    def variables(self) -> dict[str, str]:
        """The ``CLERK_*=...`` lines read so far."""
        pairs = (line.strip().split("=", 1) for line in self.lines if line.startswith("CLERK_"))
        return dict(pairs)


@contextmanager
def emulator_process(cwd: Path, *args: str) -> Iterator[EmulatorProcess]:
    """Run the emulator in ``cwd`` without any ``CLERK_*`` variable; interrupt it (Ctrl-C) and
    wait for it to exit at the end of the block."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("CLERK_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "clerk_deps", "emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean,
        cwd=cwd,
    )
    try:
        yield EmulatorProcess(process)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)

"""`rollout-monitor demo` as a user runs it: a real process, its console read line by line."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

DEMO = [sys.executable, "-m", "monitor", "demo"]
STOP_TIMEOUT = 60.0


class DemoRun:
    """The demo as a child process, its standard input a pipe fed `piped` and then closed."""

    def __init__(self, args: Sequence[str], piped: str) -> None:
        self.process = subprocess.Popen(
            [*DEMO, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._seen = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        assert self.process.stdin is not None
        self.process.stdin.write(piped)  # as `printf 'migrate\n' | rollout-monitor demo` does
        self.process.stdin.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._seen:
                self._lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    @property
    def output(self) -> str:
        """Everything printed so far."""
        with self._seen:
            return "\n".join(self._lines)

    def wait_for(self, pattern: str, timeout: float) -> str:
        """The first line matching the regular expression (fails after timeout or exit)."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                found = next((line for line in self._lines if re.search(pattern, line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"no line matching {pattern!r} within {timeout:g}s:\n"
                        + "\n".join(self._lines)
                    )
                self._seen.wait(min(left, 1.0))

    def stop(self) -> int:
        """Ctrl-C, as a user stops it; its exit code (killed if it does not stop)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

"""Running one container process: log capture, per-line hooks, runtime limit, interruption.

The process's stdout and stderr go, line by line, to the job's log file and to the hooks (metric
parsing, progress). A runtime limit or an interruption sends SIGTERM, as SageMaker does, and
SIGKILL after the grace period. The process leads a process group of its own, which ends with it
(what it started is stopped too, as a container's are) and with the process that started it
(``lifetime``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from emulators.core import lifetime

# SageMaker gives a container 120 s between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS: Final = 120.0
_POLL: Final = 0.05


@dataclass
class Outcome:
    exit_code: int
    seconds: float
    runtime_exceeded: bool = False
    interrupted: bool = False
    stopped: bool = False


@dataclass
class Watch:
    """What an interruption trigger may look at while the process runs."""

    started: float
    lines: int = 0
    last_line: str = ""

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def run(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    cwd: Path,
    log: IO[str],
    max_runtime: float | None = None,
    on_line: Callable[[str], None] | None = None,
    interrupt_when: Callable[[Watch], bool] | None = None,
    cancel: threading.Event | None = None,
) -> Outcome:
    """Run ``argv`` to the end. ``interrupt_when`` is polled and sends SIGTERM once when it turns
    true; so do the runtime limit and ``cancel`` (the execution is being stopped)."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(argv),
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,  # a Ctrl-C in the terminal reaches the engine, which stops jobs itself
    )
    lifetime.adopt(process.pid)
    watch = Watch(started)
    stdout = process.stdout
    assert stdout is not None

    def pump() -> None:
        for line in stdout:
            log.write(line)
            log.flush()
            watch.lines += 1
            watch.last_line = line
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    outcome = Outcome(exit_code=0, seconds=0.0)
    term_sent_at: float | None = None
    try:
        while process.poll() is None:
            now = time.monotonic()
            if term_sent_at is None:
                if cancel is not None and cancel.is_set():
                    outcome.stopped = True
                elif interrupt_when is not None and interrupt_when(watch):
                    outcome.interrupted = True
                elif max_runtime is not None and now - started > max_runtime:
                    outcome.runtime_exceeded = True
                if outcome.interrupted or outcome.runtime_exceeded or outcome.stopped:
                    process.send_signal(signal.SIGTERM)
                    term_sent_at = now
            elif now - term_sent_at > STOP_GRACE_SECONDS:
                _kill_group(process)
            time.sleep(_POLL)
    finally:
        # On an exception (the engine stopping) and after a normal exit alike: what the job left
        # running ends with it, as a container's processes do.
        _kill_group(process)
        lifetime.release(process.pid)
        reader.join(timeout=10)
    outcome.exit_code = process.returncode
    outcome.seconds = time.monotonic() - started
    return outcome


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()

"""Container processes: a runtime limit, an interruption trigger and a stopped execution each end the
process with SIGTERM, and every log line reaches the hooks (``emulators/core/procs.py``)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from emulators.core import procs
from emulators.sagemaker import InterruptPlan
from emulators.sagemaker.steps.spot import Trigger

_TICKER = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
for i in range(200):
    print(f"[{i}] tick", flush=True)
    time.sleep(0.02)
"""
# SIGTERM before the handler is installed ends the process with -15 instead of 143: both are a stop.
STOPPED = (143, -15)


def test_a_process_over_its_runtime_gets_sigterm(tmp_path: Path) -> None:
    with (tmp_path / "log").open("w") as log:
        outcome = procs.run(
            [sys.executable, "-c", _TICKER], env=dict(os.environ), cwd=tmp_path, log=log, max_runtime=0.3
        )
    assert outcome.runtime_exceeded and outcome.exit_code in STOPPED and outcome.seconds < 5


def test_an_interruption_trigger_fires_on_a_log_line_and_lines_reach_the_hooks(tmp_path: Path) -> None:
    trigger = Trigger(InterruptPlan(log_pattern=r"^\[5\] "), None)
    seen: list[str] = []

    def on_line(text: str) -> None:
        seen.append(text)
        trigger.line(text)

    with (tmp_path / "log").open("w") as log:
        outcome = procs.run(
            [sys.executable, "-c", _TICKER],
            env=dict(os.environ),
            cwd=tmp_path,
            log=log,
            on_line=on_line,
            interrupt_when=trigger,
        )
    assert outcome.interrupted and outcome.exit_code == 143
    assert seen[:6] == [f"[{i}] tick\n" for i in range(6)] and len(seen) < 100
    assert (tmp_path / "log").read_text().startswith("[0] tick\n[1] tick\n")


def test_a_stopped_execution_stops_its_processes(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with (tmp_path / "log").open("w") as log:
        outcome = procs.run(
            [sys.executable, "-c", _TICKER], env=dict(os.environ), cwd=tmp_path, log=log, cancel=cancel
        )
    assert outcome.stopped and outcome.exit_code in STOPPED

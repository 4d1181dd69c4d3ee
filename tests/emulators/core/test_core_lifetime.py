"""Child process groups end with the process that started them, however it ends; a pid is told from a
later process that reuses it (``emulators/core/lifetime.py``). Real processes throughout."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulators.core.lifetime import ORPHAN_GRACE_SECONDS, alive, start_time, this_process

REPO = Path(__file__).resolve().parents[3]

# A parent that starts two process groups (each a child with a grandchild; the second child ignores
# SIGTERM), announces both, withdraws a third, prints every pid with its start time and waits.
_PARENT = """
import json, os, subprocess, sys, time
from emulators.core import lifetime
from emulators.core.lifetime import start_time

CHILD = '''
import signal, subprocess, sys, time
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(grandchild.pid, flush=True)
time.sleep(600)
'''

pids = []
for kind in ("plain", "stubborn", "released"):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    lifetime.adopt(child.pid)
    grandchild = int(child.stdout.readline())
    if kind == "released":
        lifetime.release(child.pid)
    pids += [(kind, child.pid, start_time(child.pid)), (kind, grandchild, start_time(grandchild))]
print(json.dumps(pids), flush=True)
time.sleep(600)
"""


def _parent() -> tuple[subprocess.Popen[str], list[tuple[str, int, int]]]:
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert parent.stdout is not None
    line = parent.stdout.readline()
    assert line, "the parent printed nothing"
    return parent, [tuple(entry) for entry in json.loads(line)]


def _gone_within(processes: list[tuple[str, int, int]], seconds: float) -> list[tuple[str, int, int]]:
    deadline = time.monotonic() + seconds
    left = processes
    while left and time.monotonic() < deadline:
        left = [p for p in left if alive(p[1], p[2])]
        time.sleep(0.05)
    return left


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_announced_groups_end_with_their_parent_and_withdrawn_ones_do_not(signum: int) -> None:
    parent, processes = _parent()
    released = [p for p in processes if p[0] == "released"]
    try:
        assert all(alive(pid, started) for _, pid, started in processes)
        parent.send_signal(signum)
        parent.wait(timeout=30)
        announced = [p for p in processes if p[0] != "released"]
        # SIGTERM at once for every group, SIGKILL after the grace for what ignored it.
        assert _gone_within(announced, ORPHAN_GRACE_SECONDS + 10) == []
        assert all(alive(pid, started) for _, pid, started in released)
    finally:
        for _, pid, _started in released:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_process_is_identified_by_pid_and_start_time() -> None:
    me = this_process()
    assert me["pid"] == os.getpid() and me["start_time"] == start_time(os.getpid())
    assert alive(os.getpid(), me["start_time"])
    # The same pid with another start time is another process: the recorded one is gone.
    assert not alive(os.getpid(), (me["start_time"] or 0) + 1)
    assert start_time(2**22 + 12345) is None and not alive(2**22 + 12345, None)


def test_a_zombie_is_not_alive() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    started = start_time(child.pid)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_bytes().split(b") ")[1][:1] != b"Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert started is not None and not alive(child.pid, started)
    child.wait()

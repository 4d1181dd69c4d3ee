"""Child processes die with the process that started them, however it ends; a process is told from a
later one that reuses its pid.

Every container process the emulators start (a job, a model server and its workers) runs in a process
group of its own, so one ``killpg`` reaches everything it started. The groups are announced to a
*keeper*: one small process per parent, started on first use, that reads a pipe whose write end only
the parent holds (the descriptor is not inherited by the children). When the parent ends, in any way
- a normal exit, an exception, SIGTERM, SIGKILL, the OOM killer - the kernel closes that end, the
keeper reads end-of-file, sends SIGTERM to every group still announced, SIGKILL to what is left
after a grace period, and exits. A group is withdrawn once its process has been reaped.

``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the child ends (the engine
starts jobs from worker threads, the deployer starts fleets from its own), it needs a ``preexec_fn``
(unsafe in a threaded parent), and it reaches only the direct child, not a server's workers.

A process is identified by its pid *and* its start time (``/proc/<pid>/stat``), so a pid the kernel
gave to another process later is not taken for the one recorded: the keeper never signals a group
whose leader was replaced, and a run's record is not taken as alive because its pid was reused.

This module imports only the standard library: the keeper runs it as a script by path.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Final

# How long the keeper waits after SIGTERM before SIGKILL: the parent is gone, nobody waits for a
# checkpoint upload, so this is much shorter than SageMaker's 120 s.
ORPHAN_GRACE_SECONDS: Final = 5.0
_POLL: Final = 0.05


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time)`` of ``pid`` from ``/proc/<pid>/stat``; None if there is no such process
    or no /proc. The start time is in clock ticks since boot (field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    fields = stat[stat.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode(), int(fields[19])
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot); None if there is no such process or no /proc."""
    stat = _stat(pid)
    return None if stat is None else stat[1]


def alive(pid: int, started: int | None) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs: not ended, not a zombie,
    not another process that was given the same pid. Without a start time (or /proc), whether any
    process has that pid."""
    if pid <= 0:
        return False
    if started is not None and Path("/proc/self/stat").is_file():
        stat = _stat(pid)
        return stat is not None and stat[1] == started and stat[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def this_process() -> dict[str, int | None]:
    """This process as a record names it: ``{"pid", "start_time"}``."""
    return {"pid": os.getpid(), "start_time": start_time(os.getpid())}


class _Keeper:
    """The parent's side: the keeper process and the pipe to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipe: IO[str] | None = None
        self._process: subprocess.Popen[str] | None = None
        self._owner = 0

    def _ensure(self) -> IO[str] | None:
        if self._pipe is not None and self._owner == os.getpid():
            return self._pipe
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", str(Path(__file__).resolve())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
                start_new_session=True,  # a Ctrl-C in the terminal is the parent's to handle
            )
        except OSError:
            return None  # no keeper: children are still stopped by the parent when it ends normally
        self._process, self._pipe, self._owner = process, process.stdin, os.getpid()
        return self._pipe

    def _send(self, line: str) -> None:
        pipe = self._ensure()
        if pipe is None:
            return
        try:
            pipe.write(line)
            pipe.flush()
        except OSError:  # the keeper died: reap it; the next announcement starts another
            self._pipe = None
            if self._process is not None:
                self._process.poll()

    def adopt(self, pid: int) -> None:
        with self._lock:
            self._send(f"+ {pid} {start_time(pid) or 0}\n")

    def release(self, pid: int) -> None:
        with self._lock:
            if self._pipe is not None and self._owner == os.getpid():
                self._send(f"- {pid}\n")


_KEEPER: Final = _Keeper()


def adopt(pid: int) -> None:
    """``pid`` leads a process group (``start_new_session``) that must end with this process.

    Call it right after starting the child, and :func:`release` once it has been reaped.
    """
    _KEEPER.adopt(pid)


def release(pid: int) -> None:
    """The group led by ``pid`` ended (its leader was reaped): the keeper forgets it."""
    _KEEPER.release(pid)


# -- the keeper -----------------------------------------------------------------------------------


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ours(pgid: int, started: int) -> bool:
    """The group is still the one announced: its leader has the announced start time, or the leader
    is gone and members are left (a pgid is not reused while its group has members)."""
    leader = start_time(pgid)
    if leader is None:
        return _group_exists(pgid)
    return started in (0, leader)


def _end_groups(groups: dict[int, int]) -> None:
    targets = [pgid for pgid, started in groups.items() if _ours(pgid, started)]
    for pgid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + ORPHAN_GRACE_SECONDS
    while targets and time.monotonic() < deadline:
        targets = [pgid for pgid in targets if _group_exists(pgid)]
        time.sleep(_POLL)
    for pgid in targets:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


def keep(announcements: IO[str]) -> None:
    """Read ``+ <pgid> <start time>`` and ``- <pgid>`` lines until end-of-file, then end every group
    still announced."""
    groups: dict[int, int] = {}
    for line in announcements:
        parts = line.split()
        with contextlib.suppress(ValueError, IndexError):
            if parts[0] == "+":
                groups[int(parts[1])] = int(parts[2])
            elif parts[0] == "-":
                groups.pop(int(parts[1]), None)
    _end_groups(groups)


if __name__ == "__main__":
    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(number, signal.SIG_IGN)
    keep(sys.stdin)

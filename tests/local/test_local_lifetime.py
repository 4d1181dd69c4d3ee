"""A killed local run is recognisable as dead and leaves nothing running (real processes, penguins).

``rookery local run`` and ``rookery local serve`` run as real processes and are sent SIGKILL or
SIGTERM while a job runs, while BatchTransform's model server serves, and while an endpoint serves;
a run also meets a full disk. Afterwards the execution reads as Failed, interrupted (SIGKILL, the
full disk) or Stopped (SIGTERM), and none of the processes the command had started (jobs, model
servers and their workers, the keeper) is left. Processes are found in /proc and told apart by pid
*and* start time.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from local_testing import new_home
from typer.testing import CliRunner

from emulators.core.lifetime import alive, start_time
from emulators.sagemaker import ImageMap, LocalEngine, LocalHome, LocalRegistry
from rookery.cli.main import app
from rookery.demo.dataset import penguin_records

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("local-lifetime")]

REPO = Path(__file__).resolve().parents[2]
ROOKERY = str(Path(sys.executable).parent / "rookery")


@dataclass(frozen=True)
class Proc:
    pid: int
    started: int
    cmdline: str


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rfind(b")") + 2 :].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[Proc]:
    """Every process below ``pid`` (children, their children, ...), with start time and command line."""
    tree = _children()
    found: list[Proc] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        todo.extend(tree.get(child, []))
        started = start_time(child)
        try:
            cmdline = (Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")).decode(
                errors="replace"
            )
        except OSError:
            continue
        if started is not None:
            found.append(Proc(child, started, cmdline))
    return found


def survivors(processes: list[Proc], timeout: float = 30.0) -> list[Proc]:
    """The processes of ``processes`` still running after ``timeout`` (the keeper's grace included)."""
    deadline = time.monotonic() + timeout
    left = processes
    while left and time.monotonic() < deadline:
        left = [p for p in left if alive(p.pid, p.started)]
        time.sleep(0.1)
    return left


@dataclass
class Command:
    """A ``rookery`` command running in the background, its output collected line by line."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, *args: str, argv: tuple[str, ...] = (ROOKERY,)) -> Command:
        process = subprocess.Popen(
            [*argv, *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        command = cls(process)
        threading.Thread(target=command._pump, daemon=True).start()
        return command

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, what: str, found: Callable[[], bool], timeout: float = 240.0) -> None:
        deadline = time.monotonic() + timeout
        while not found():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the command ended ({self.process.returncode}) before {what}:\n{self.output}"
                )
            assert time.monotonic() < deadline, f"no {what} within {timeout} s:\n{self.output}"
            time.sleep(0.05)

    def child(self, pattern: str) -> Callable[[], bool]:
        """True once a process below the command's has a command line matching ``pattern``."""
        return lambda: any(re.search(pattern, p.cmdline) for p in descendants(self.process.pid))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def kill(self, signum: int) -> list[Proc]:
        """Send ``signum``; the processes the command had started at that moment."""
        below = descendants(self.process.pid)
        self.process.send_signal(signum)
        self.process.wait(timeout=180)
        return below

    def __enter__(self) -> Command:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("lifetime") / "penguins.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in penguin_records()), encoding="utf-8")
    return data


def _run(home: LocalHome, data: Path) -> Command:
    return Command.start("local", "run", "--stage", "dev", "--data", str(data), "--home", str(home.root))


def _only_execution(home: LocalHome) -> str:
    [execution] = LocalEngine(home, ImageMap()).executions()
    return execution.id


def test_a_run_killed_during_a_job_reads_as_interrupted_and_leaves_no_process(
    tmp_path: Path, penguins: Path
) -> None:
    home = new_home(tmp_path / "home")
    with _run(home, penguins) as command:
        command.wait_for("a training job", command.child(r"/train(\s|$)"))
        below = command.kill(signal.SIGKILL)
    assert any(re.search(r"/train(\s|$)", p.cmdline) for p in below)
    assert survivors(below) == []

    execution_id = _only_execution(home)
    execution = LocalEngine(home, ImageMap()).execution(execution_id)
    assert execution.status == "Failed" and execution.interrupted
    assert execution.failed_step == "Train"
    assert execution.failure_reason is not None
    assert (
        execution.failure_reason.startswith("interrupted: ")
        and "step Train was running" in execution.failure_reason
    )
    assert execution.step("Train").status == "Failed"
    # The record on disk still says what the killed process last wrote; readers tell it is dead.
    raw = json.loads((execution.path / "execution.json").read_text(encoding="utf-8"))
    assert raw["status"] == "Executing" and raw["process"]["pid"] == command.process.pid

    runner = CliRunner()
    listed = runner.invoke(app, ["local", "executions", "--home", str(home.root)])
    assert listed.exit_code == 0, listed.output
    assert re.search(rf"{execution_id}.*Failed.*Train", listed.stdout.replace("\n", " "))
    described = runner.invoke(app, ["local", "describe", execution_id, "--home", str(home.root)])
    assert described.exit_code == 0, described.output
    assert "interrupted" in described.stdout and "Train" in described.stdout


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path: Path, penguins: Path) -> None:
    home = new_home(tmp_path / "home")
    with _run(home, penguins) as command:
        command.wait_for("a training job", command.child(r"/train(\s|$)"))
        below = command.kill(signal.SIGTERM)
    assert command.process.returncode == 130, command.output
    assert survivors(below) == []
    execution_id = _only_execution(home)
    assert f"execution {execution_id} stopped" in command.output
    assert "Traceback" not in command.output
    execution = LocalEngine(home, ImageMap()).execution(execution_id)
    assert execution.status == "Stopped" and not execution.interrupted
    assert execution.failure_reason == "the execution was stopped (Ctrl-C or SIGTERM)"
    assert execution.step("Train").status == "Stopped"
    assert execution.step("Evaluate").status == "NotExecuted"


@pytest.fixture(scope="module")
def killed_in_transform(tmp_path_factory: pytest.TempPathFactory, penguins: Path) -> Iterator[LocalHome]:
    """A run SIGKILLed while BatchTransform's model server runs (the version it registered stays)."""
    home = new_home(tmp_path_factory.mktemp("killed-in-transform") / "home")
    with _run(home, penguins) as command:
        command.wait_for("BatchTransform's model server", command.child(r"\bserve\b"))
        below = command.kill(signal.SIGKILL)
    assert any(re.search(r"\bserve\b", p.cmdline) for p in below)
    assert survivors(below) == []
    yield home


def test_a_run_killed_during_batch_transform_leaves_no_model_server(killed_in_transform: LocalHome) -> None:
    execution = LocalEngine(killed_in_transform, ImageMap()).execution(_only_execution(killed_in_transform))
    assert execution.status == "Failed" and execution.interrupted
    assert execution.failed_step == "BatchTransform"
    assert execution.step("Register").status == "Succeeded"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_serve_leaves_no_model_server(killed_in_transform: LocalHome, signum: int) -> None:
    home = killed_in_transform
    registry = LocalRegistry(home)
    if not [p for p in registry.packages() if p.approval_status == "Approved"]:
        registry.approve("rookery-dev-models/1")
    name = f"lifetime-{signal.Signals(signum).name.lower()}"
    with Command.start("local", "serve", "--port", "0", "--name", name, "--home", str(home.root)) as command:
        command.wait_for("the endpoint's URL", lambda: "URL: http://127.0.0.1:" in command.output)
        below = command.kill(signum)
    assert any(re.search(r"\bserve\b", p.cmdline) for p in below)
    assert survivors(below) == []
    if signum == signal.SIGTERM:
        assert command.process.returncode == 0, command.output
        assert f"endpoint {name} stopped" in command.output


# `rookery` with a full disk from the moment BatchTransform writes its output (its model server is
# running then): from that write on, every whole-file write (emulators.core.files._write, where every
# record reaches the disk) writes half its bytes and fails with ENOSPC, as a disk that fills up does.
_FULL_DISK_ROOKERY = """
import errno, os, sys
from emulators.core import files
from rookery.cli.main import app

real = files._write
full = False

def write(path, data):
    global full
    full = full or ".out." in path.name
    if not full:
        return real(path, data)
    real(path, data[: len(data) // 2])
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

files._write = write
sys.argv[0] = "rookery"
app()
"""


def test_a_full_disk_is_one_line_and_leaves_no_partial_file_and_no_process(
    tmp_path: Path, penguins: Path
) -> None:
    home = new_home(tmp_path / "home")
    with Command.start(
        "local",
        "run",
        "--stage",
        "dev",
        "--data",
        str(penguins),
        "--home",
        str(home.root),
        argv=(sys.executable, "-c", _FULL_DISK_ROOKERY),
    ) as command:
        below: list[Proc] = []
        deadline = time.monotonic() + 240
        while command.process.poll() is None:
            below += [p for p in descendants(command.process.pid) if p not in below]
            assert time.monotonic() < deadline, command.output
            time.sleep(0.05)
    assert command.process.returncode == 1, command.output
    assert "Traceback" not in command.output
    errors = [line for line in command.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, command.output
    record = next(home.executions_dir.iterdir()) / "execution.json"
    assert errors[0] == (
        f"error: cannot write {record}: no space left on the device; free space on that disk, or use a "
        "home on another one (--home or $ROOKERY_HOME), and run again"
    )
    assert any(re.search(r"\bserve\b", p.cmdline) for p in below)
    assert survivors(below) == []
    # Every record is whole: the last one written before the disk filled up, no half and no temporary.
    assert [p for p in home.root.rglob("*.tmp")] == []
    assert json.loads(record.read_text(encoding="utf-8"))["status"] == "Executing"
    execution = LocalEngine(home, ImageMap()).execution(record.parent.name)
    assert execution.status == "Failed" and execution.interrupted
    assert execution.failed_step == "BatchTransform"
    assert not list(home.s3_root.rglob("*.out"))

"""`rookery local` states what went wrong in one line with the documented exit code, never a traceback:
a damaged execution record (listed as damaged, described with its file and fix) and a home that
cannot be written (a real read-only mount when this machine allows one)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from emulators.core import files
from emulators.sagemaker import Execution, ImageMap, LocalEngine, LocalHome
from emulators.sagemaker.exceptions import DamagedExecutionError
from emulators.sagemaker.models import EXECUTION_FILE
from rookery.cli.main import app

REPO = Path(__file__).resolve().parents[2]
ROOKERY = str(Path(sys.executable).parent / "rookery")

VALID: dict[str, object] = {
    "format": "rookery-local-execution/1",
    "id": "abc123def456",
    "arn": "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/abc123def456",
    "pipeline_name": "rookery-dev-pipeline",
    "status": "Succeeded",
    "failure_reason": None,
    "failed_step": None,
    "started_at": "2026-01-01T10:00:00+00:00",
    "ended_at": "2026-01-01T10:01:00+00:00",
    "parameters": {"AucThreshold": 0.7},
    "notes": [{"step": "Train", "field": "CacheConfig", "note": "always computed"}],
    "steps": [
        {
            "name": "Train",
            "type": "Training",
            "status": "Succeeded",
            "started_at": "2026-01-01T10:00:00+00:00",
            "ended_at": "2026-01-01T10:00:30+00:00",
            "failure_reason": None,
            "properties": {},
            "log_path": "/tmp/x.log",
            "metrics": {},
            "job_dir": None,
        }
    ],
    "process": {"pid": 1, "start_time": 1},
}


def _home(tmp_path: Path, content: bytes, execution_id: str = "abc123def456") -> LocalHome:
    home = LocalHome(tmp_path / "home")
    folder = home.executions_dir / execution_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / EXECUTION_FILE).write_bytes(content)
    return home


def test_a_damaged_record_is_listed_as_damaged_and_described_in_one_line(tmp_path: Path) -> None:
    home = _home(tmp_path, b'{"id": "abc123def456", "status": "Executing", ')
    record = home.executions_dir / "abc123def456" / EXECUTION_FILE
    runner = CliRunner()

    listed = runner.invoke(app, ["local", "executions", "--home", str(home.root)], catch_exceptions=False)
    assert listed.exit_code == 0
    assert "abc123def456" in listed.stdout and "Damaged" in listed.stdout
    [line] = listed.stderr.splitlines()
    assert line.startswith(f"damaged: the execution record {record} is damaged (")
    assert line.endswith(f"); restore it, or remove the execution with `rm -r {record.parent}`")

    described = runner.invoke(
        app, ["local", "describe", "abc123def456", "--home", str(home.root)], catch_exceptions=False
    )
    assert described.exit_code == 2
    assert described.stdout == ""
    assert described.stderr.splitlines() == [f"error: {line.removeprefix('damaged: ')}"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def _mutations() -> st.SearchStrategy[bytes]:
    """The valid record with one field (top level or the step's) replaced by any JSON value, or removed."""
    step_fields = list(VALID["steps"][0])  # type: ignore[index]

    def mutate(where: str, key: str, value: object, remove: bool) -> bytes:
        record = json.loads(json.dumps(VALID))
        target = record if where == "top" else record["steps"][0]
        if remove:
            target.pop(key, None)
        else:
            target[key] = value
        return json.dumps(record).encode()

    return st.one_of(
        st.builds(mutate, st.just("top"), st.sampled_from(list(VALID)), JSON_VALUES, st.booleans()),
        st.builds(mutate, st.just("step"), st.sampled_from(step_fields), JSON_VALUES, st.booleans()),
    )


ANY_RECORD = st.one_of(
    st.binary(max_size=300), JSON_VALUES.map(lambda value: json.dumps(value).encode()), _mutations()
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=ANY_RECORD)
def test_any_bytes_as_an_execution_record_load_or_are_damaged(tmp_path: Path, content: bytes) -> None:
    shutil.rmtree(tmp_path / "home", ignore_errors=True)
    home = _home(tmp_path, content)
    listing = LocalEngine(home, ImageMap()).listing()
    assert len(listing.executions) + len(listing.damaged) == 1
    try:
        execution = Execution.load(home.executions_dir / "abc123def456")
    except DamagedExecutionError as exc:
        assert listing.damaged == [] or listing.damaged[0].path == exc.path
    else:
        json.dumps(execution.to_json(), default=str)  # what `describe --json` prints


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=ANY_RECORD)
def test_any_bytes_as_an_execution_record_never_give_a_traceback(tmp_path: Path, content: bytes) -> None:
    shutil.rmtree(tmp_path / "home", ignore_errors=True)
    home = _home(tmp_path, content)
    runner = CliRunner()
    listed = runner.invoke(app, ["local", "executions", "--home", str(home.root)], catch_exceptions=False)
    assert listed.exit_code == 0
    assert "abc123def456" in listed.stdout
    described = runner.invoke(
        app, ["local", "describe", "abc123def456", "--home", str(home.root)], catch_exceptions=False
    )
    assert described.exit_code in (0, 2)
    if described.exit_code == 2:
        [line] = described.stderr.splitlines()
        assert line.startswith("error: the execution record ") and "is damaged" in line


def _read_only(folder: Path) -> list[str] | None:
    """A command prefix under which ``folder`` is read-only for real: a read-only bind mount in a user
    and mount namespace of its own (no privileges needed), or, for a user other than root, the folder's
    permissions. None when this machine offers neither."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    script = f'mount --bind "{folder}" "{folder}" && mount -o remount,bind,ro "{folder}" && exec "$@"'
    prefix = [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh"]
    probe = subprocess.run(
        [*prefix, "touch", str(folder / "probe")], capture_output=True, text=True, check=False
    )
    if "Read-only file system" not in probe.stderr:
        return None
    return prefix


@pytest.mark.parametrize(
    "command",
    [
        ["local", "run", "--stage", "dev"],
        ["local", "approve", "rookery-dev-models/1"],
        ["local", "serve", "--stage", "dev", "--port", "0"],
    ],
    ids=["run", "approve", "serve"],
)
def test_a_read_only_home_is_one_line_with_exit_2_and_nothing_written(
    tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    prefix = _read_only(home)
    if prefix is not None:
        result = subprocess.run(
            [*prefix, ROOKERY, *command, "--home", str(home)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        code, stderr = result.returncode, result.stderr
    else:
        # No way to mount the home read-only here: the file system refuses, as a read-only one does,
        # every new folder under the home and every file (at the one place whole files reach the disk).
        def refuse(path: Path, *args: object, **kwargs: object) -> None:
            raise OSError(errno.EROFS, "Read-only file system", str(path))

        make_dir = Path.mkdir

        def mkdir(path: Path, *args: Any, **kwargs: Any) -> None:
            if path.is_relative_to(home) and not path.exists():
                refuse(path)
            make_dir(path, *args, **kwargs)

        monkeypatch.setattr(files, "_write", refuse)
        monkeypatch.setattr(Path, "mkdir", mkdir)
        invoked = CliRunner().invoke(app, [*command, "--home", str(home)])
        code, stderr = invoked.exit_code, invoked.stderr
    assert code == 2, stderr
    assert "Traceback" not in stderr
    [line] = stderr.splitlines()
    assert line.startswith(f"error: cannot write {home}")
    assert line.endswith("make it writable, or use a writable home (--home or $ROOKERY_HOME)")
    assert list(home.iterdir()) == []

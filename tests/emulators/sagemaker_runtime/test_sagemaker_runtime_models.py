"""Which endpoints are running: a record counts only while the process that wrote it lives, told by
pid and start time (``emulators/sagemaker_runtime/models.py``)."""

from __future__ import annotations

import json
import os

import pytest

from emulators.core.home import LocalHome
from emulators.core.lifetime import start_time
from emulators.sagemaker_runtime import find_endpoint
from emulators.sagemaker_runtime.exceptions import EndpointNotFoundError
from emulators.sagemaker_runtime.models import ENDPOINT_FILE, endpoint_record


def _record(home: LocalHome, name: str, pid: int, started: int | None) -> None:
    folder = home.endpoints_dir / name
    folder.mkdir(parents=True)
    record = {"EndpointName": name, "Url": "http://127.0.0.1:1", "Pid": pid, "PidStartTime": started}
    (folder / ENDPOINT_FILE).write_text(json.dumps(record), encoding="utf-8")


def test_a_record_whose_pid_now_belongs_to_another_process_is_not_a_running_endpoint(home: LocalHome) -> None:
    mine = start_time(os.getpid())
    assert mine is not None
    _record(home, "live", os.getpid(), mine)
    _record(home, "reused", os.getpid(), mine - 1)  # same pid, another start: the pid was reused

    assert endpoint_record(home, "live") is not None
    assert endpoint_record(home, "reused") is None
    assert find_endpoint(home)["EndpointName"] == "live"
    with pytest.raises(EndpointNotFoundError, match="'reused' is not running"):
        find_endpoint(home, "reused")

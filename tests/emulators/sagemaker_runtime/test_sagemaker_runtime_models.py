"""Which endpoints are running: a record counts only while the process that wrote it lives, told by
pid and start time (``emulators/sagemaker_runtime/models.py``)."""

from __future__ import annotations

import json
import os

import pytest

from emulators.core.home import LocalHome
from emulators.core.lifetime import start_time
from emulators.sagemaker.models import LocalRegistry
from emulators.sagemaker_runtime import find_endpoint, monitored_package
from emulators.sagemaker_runtime.exceptions import EndpointNotFoundError
from emulators.sagemaker_runtime.models import ENDPOINT_FILE, endpoint_record


def _record(home: LocalHome, name: str, pid: int, started: int | None, **extra: str) -> None:
    folder = home.endpoints_dir / name
    folder.mkdir(parents=True)
    record = {"EndpointName": name, "Url": "http://127.0.0.1:1", "Pid": pid, "PidStartTime": started, **extra}
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


def test_the_monitored_version_is_the_one_the_endpoint_serves_else_the_latest_approved(
    home: LocalHome,
) -> None:
    registry = LocalRegistry(home)
    first, second = (
        registry.create(
            "rookery-dev-models",
            region="eu-west-1",
            account="123456789012",
            approval_status="Approved",
            inference_spec={},
            model_metrics={},
            metrics={},
            execution_id=None,
        )
        for _ in range(2)
    )
    # Version 2 was approved and rolled back by the alarms: the endpoint still serves version 1.
    _record(home, "served", os.getpid(), start_time(os.getpid()), ModelPackageArn=first.arn)

    assert monitored_package(home, "served", "rookery-dev-models").ref == first.ref
    assert monitored_package(home, "stopped", "rookery-dev-models").ref == second.ref

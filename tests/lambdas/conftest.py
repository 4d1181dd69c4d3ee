"""Fixtures for the Lambda tests: a fake Lambda context, the dataset schema, S3 events, handler loading."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from stage import load_stage


@dataclass(frozen=True)
class FakeLambdaContext:
    """The attributes Powertools reads from the Lambda context object."""

    function_name: str = "rookery-dev-test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:rookery-dev-test-function"
    aws_request_id: str = "5f3c1d2e-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/rookery-dev-test-function"
    log_stream_name: str = "2024/05/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(scope="session")
def dataset_schema_json() -> str:
    """The dev stage's dataset schema exactly as the construct puts it into the environment."""
    return load_stage("dev").dataset.to_json()


LoadHandler = Callable[[str, Mapping[str, str]], ModuleType]


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoadHandler]:
    """Import ``<package>.handler`` afresh (a cold start) with exactly the given function environment."""
    loaded: list[str] = []

    def load(package: str, env: Mapping[str, str]) -> ModuleType:
        for name in (
            "ROOKERY_DATASET_SCHEMA",
            "PIPELINE_NAME",
            "DATA_PREFIX",
            "ERROR_PREFIX",
            "INPUT_PARAMETER_NAME",
            "RAW_BUCKET",
            "RETRAIN_ALARM_NAMES",
            "RETRAIN_MIN_INTERVAL_HOURS",
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_METRICS_NAMESPACE",
        ):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        module = f"{package}.handler"
        sys.modules.pop(module, None)
        loaded.append(module)
        return importlib.import_module(module)

    yield load
    for module in loaded:
        sys.modules.pop(module, None)


# S3 "Object Created" EventBridge events shaped as S3 sends them (the S3 user guide's example layout).
RAW_BUCKET = "rookery-dev-raw-123456789012"
DATA_KEY = "penguins/ingest_date=2024-05-01/rookery-dev-ingest-1-2024-05-01-12-00-00-0a1b2c3d.json"


def build_object_created_event(
    key: str = DATA_KEY,
    *,
    bucket: str = RAW_BUCKET,
    version_id: str | None = "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
    etag: str | None = "b1946ac92492d2347c6235b4d2611184",
    size: int | None = 5120,
    time: str = "2024-05-01T12:00:05Z",
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": key, "sequencer": "617f08299329d189"}
    if size is not None:
        obj["size"] = size
    if etag is not None:
        obj["etag"] = etag
    if version_id is not None:
        obj["version-id"] = version_id
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": time,
        "region": "eu-west-1",
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": obj,
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "firehose.amazonaws.com",
            "reason": "PutObject",
        },
    }


@pytest.fixture
def object_created_event() -> Callable[..., dict[str, Any]]:
    return build_object_created_event


# CloudWatch "Alarm State Change" EventBridge events shaped as CloudWatch sends them (the CloudWatch
# user guide's example: detail.state and detail.previousState with value, reason and timestamp).
ALARM_NAME = "rookery-dev-endpoint-data-quality-violations"


def build_alarm_state_change_event(
    name: str = ALARM_NAME,
    *,
    state: str = "ALARM",
    previous: str = "OK",
    state_time: str = "2024-05-01T13:05:12.345+0000",
    time: str = "2024-05-01T13:05:12Z",
    event_id: str = "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
) -> dict[str, Any]:
    def section(value: str, timestamp: str) -> dict[str, Any]:
        return {"value": value, "reason": f"Threshold Crossed: now {value}", "timestamp": timestamp}

    return {
        "version": "0",
        "id": event_id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": time,
        "region": "eu-west-1",
        "resources": [f"arn:aws:cloudwatch:eu-west-1:123456789012:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": section(state, state_time),
            "previousState": section(previous, "2024-05-01T12:05:12.345+0000"),
            "configuration": {"description": "data-quality monitoring found violations", "metrics": []},
        },
    }


@pytest.fixture
def alarm_event() -> Callable[..., dict[str, Any]]:
    return build_alarm_state_change_event

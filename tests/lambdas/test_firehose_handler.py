"""The real Firehose handler: plain dict events in, Firehose's answer out, reasons logged, config checked."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pandas as pd
import pytest
from palmerpenguins import load_penguins

from firehose_transform.events import build_firehose_event, read_response
from firehose_transform.settings import ConfigurationError
from firehose_transform.transform import FirehoseEventError

# Fixtures from conftest.py: a fake Lambda context and a cold-start importer of handler modules.
LoadHandler = Callable[[str, Mapping[str, str]], ModuleType]
FakeLambdaContext = object

ARRIVAL = datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)


@pytest.fixture
def handler(load_handler: LoadHandler, dataset_schema_json: str) -> ModuleType:
    return load_handler("firehose_transform", {"ROOKERY_DATASET_SCHEMA": dataset_schema_json})


def emf_metrics(stdout: str) -> dict[str, float]:
    """Metric name -> value from the Embedded Metric Format lines Powertools prints."""
    values: dict[str, float] = {}
    for line in stdout.splitlines():
        if '"_aws"' in line:
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    values[metric["Name"]] = blob[metric["Name"]][0]
    return values


def test_the_penguins_rows_go_through_the_real_handler(
    handler: ModuleType, lambda_context: FakeLambdaContext, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = load_penguins().to_json(orient="records", lines=True).splitlines()
    event = build_firehose_event(rows, arrival=ARRIVAL)

    response = handler.lambda_handler(event, lambda_context)

    assert len(response["records"]) == len(rows) == 344
    assert all(set(r) == {"recordId", "result", "data"} for r in response["records"])
    assert [r["recordId"] for r in response["records"]] == [r["recordId"] for r in event["records"]]
    assert {r["result"] for r in response["records"]} == {"Ok"}, "missing values and unknown sex are valid"
    jsonl = "".join(base64.b64decode(r["data"]).decode() for r in response["records"])
    frame = pd.read_json(io.StringIO(jsonl), lines=True)
    assert frame.shape == (344, 9)
    assert frame["sex"].isna().sum() == 11 and frame["bill_length_mm"].isna().sum() == 2
    assert set(frame["_ingest_ts"]) == {"2024-05-01T12:00:00.250Z"}
    metrics = emf_metrics(capsys.readouterr().out)
    assert (metrics["RecordsIn"], metrics["RecordsOk"], metrics["RecordsFailed"]) == (344.0, 344.0, 0.0)


def test_failed_records_are_answered_and_their_reasons_logged(
    handler: ModuleType,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    payloads: list[str | bytes] = [
        json.dumps({"species": "Adelie", "sex": "female", "body_mass_g": 3400}),
        '{"species": "Adelie", "body_mass_g": "3400"}',
        b"\x89PNG\r\n",
    ]
    event = build_firehose_event(payloads, arrival=ARRIVAL)
    caplog.set_level(logging.INFO)

    answers = read_response(handler.lambda_handler(event, lambda_context))

    assert [a.result for a in answers] == ["Ok", "ProcessingFailed", "ProcessingFailed"]
    assert answers[2].data == b"\x89PNG\r\n", "failed records carry their original data"
    warnings = {r.record_id: r.reason for r in caplog.records if r.getMessage() == "record failed validation"}  # type: ignore[attr-defined]
    assert set(warnings) == {answers[1].record_id, answers[2].record_id}
    assert "'body_mass_g' must be a JSON number or null, got string '3400'" in warnings[answers[1].record_id]
    assert "not UTF-8 text" in warnings[answers[2].record_id]
    metrics = emf_metrics(capsys.readouterr().out)
    assert (metrics["RecordsIn"], metrics["RecordsOk"], metrics["RecordsFailed"]) == (3.0, 1.0, 2.0)


def test_undecodable_base64_is_failed_not_raised(
    handler: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    event = build_firehose_event([b"{}"], arrival=ARRIVAL)
    event["records"][0]["data"] = "%%% not base64 %%%"
    response = handler.lambda_handler(event, lambda_context)
    assert response["records"] == [
        {
            "recordId": event["records"][0]["recordId"],
            "result": "ProcessingFailed",
            "data": "%%% not base64 %%%",
        }
    ]


def test_an_empty_batch_gets_an_empty_answer(handler: ModuleType, lambda_context: FakeLambdaContext) -> None:
    assert handler.lambda_handler(build_firehose_event([]), lambda_context) == {"records": []}


def test_an_event_that_is_not_from_firehose_is_rejected_and_logged(
    handler: ModuleType,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(FirehoseEventError, match="the event has no 'records' list"):
        handler.lambda_handler({"Records": [{"body": "{}"}]}, lambda_context)
    assert any(r.getMessage() == "rejected a malformed Firehose event" for r in caplog.records)
    assert emf_metrics(capsys.readouterr().out)["MalformedEvents"] == 1.0


def test_a_record_that_is_not_an_object_makes_the_event_malformed(
    handler: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    event = build_firehose_event(["{}"])
    event["records"].append("junk")
    with pytest.raises(FirehoseEventError, match="record 1 is string, not an object with a recordId"):
        handler.lambda_handler(event, lambda_context)


def test_missing_schema_fails_the_cold_start_naming_the_variable(load_handler: LoadHandler) -> None:
    with pytest.raises(ConfigurationError, match="ROOKERY_DATASET_SCHEMA is not set"):
        load_handler("firehose_transform", {})


def test_invalid_schema_fails_the_cold_start_with_the_problem(load_handler: LoadHandler) -> None:
    bad = {"name": "penguins", "target": "sex", "positive_class": "female", "numeric": []}
    with pytest.raises(ConfigurationError, match="ROOKERY_DATASET_SCHEMA is invalid: no feature columns"):
        load_handler("firehose_transform", {"ROOKERY_DATASET_SCHEMA": json.dumps(bad)})


def test_event_builder_round_trips_and_refuses_naive_times() -> None:
    event: dict[str, Any] = build_firehose_event(["a", b"b"], arrival=ARRIVAL)
    assert [r["recordId"] for r in event["records"]] == ["00000000000000000000", "00000000000000000001"]
    assert [base64.b64decode(r["data"]) for r in event["records"]] == [b"a", b"b"]
    assert event["records"][0]["approximateArrivalTimestamp"] == 1_714_564_800_250
    with pytest.raises(ValueError, match="timezone-aware"):
        build_firehose_event(["a"], arrival=datetime(2024, 5, 1))

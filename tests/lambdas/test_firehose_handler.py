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
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from palmerpenguins import load_penguins

from firehose_transform.events import build_firehose_event, read_response
from firehose_transform.settings import ConfigurationError
from firehose_transform.transform import FirehoseEventError
from rookery_contracts.ingest import (
    LAMBDA_PAYLOAD_LIMIT_BYTES,
    TRANSFORM_BUFFER_MIB,
    TRANSFORM_RESPONSE_BUDGET_BYTES,
)

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


# Arbitrary JSON as text, including what json.dumps cannot produce from Python values: lone UTF-16
# surrogate escapes (JavaScript cutting a string mid-emoji) and integer literals of any length.
any_text = st.text(st.characters() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=12)
integer_literals = st.from_regex(r"\A-?[1-9][0-9]{0,30}\Z") | st.integers(4000, 6000).map(lambda n: "9" * n)
json_scalars = st.one_of(
    st.sampled_from(["null", "true", "false", "NaN", "-Infinity", "1e400", "-0.0", "0"]),
    integer_literals,
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    any_text.map(json.dumps),  # ensure_ascii: lone surrogates come out as \udXXX escapes
)
json_texts = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(
            st.tuples(st.sampled_from(["species", "sex", "body_mass_g", "island"]) | any_text, inner),
            max_size=5,
        ).map(lambda pairs: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}")
    ),
    max_leaves=12,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)


def as_base64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()


record_data = st.one_of(
    json_texts.map(as_base64),
    st.binary(max_size=64).map(lambda raw: base64.b64encode(raw).decode()),
    any_text,  # not base64 at all
    json_values,
)
arrivals = st.integers(min_value=1_700_000_000_000, max_value=1_800_000_000_000) | st.integers() | json_values
# Records as Firehose sends them, and records missing or mangling any field but the id.
records = st.fixed_dictionaries(
    {},
    optional={
        "data": record_data,
        "approximateArrivalTimestamp": arrivals,
        "kinesisRecordMetadata": json_values,
    },
)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@example(
    batch=[
        {"data": as_base64('{"species": "Adelie\\ud83d"}'), "approximateArrivalTimestamp": 1},
        {
            "data": as_base64('{"island": "Dream", "year": ' + "1" * 4301 + "}"),
            "approximateArrivalTimestamp": 1,
        },
    ],
    record_ids=[str(i) for i in range(8)],
)
@given(
    batch=st.lists(records, max_size=8),
    record_ids=st.lists(any_text.filter(bool), min_size=8, max_size=8, unique=True),
)
def test_property_no_record_makes_the_handler_raise(
    handler: ModuleType, lambda_context: FakeLambdaContext, batch: list[dict[str, Any]], record_ids: list[str]
) -> None:
    event = build_firehose_event([])
    event["records"] = [{"recordId": rid, **record} for rid, record in zip(record_ids, batch, strict=False)]

    response = handler.lambda_handler(event, lambda_context)

    answers = response["records"]
    assert [a["recordId"] for a in answers] == [r["recordId"] for r in event["records"]]
    assert all(a["result"] in {"Ok", "ProcessingFailed"} for a in answers)
    json.dumps(response)  # what the Lambda runtime does with it


def firehose_sized_ids(event: dict[str, Any]) -> dict[str, Any]:
    """The event with record ids as long as Firehose's (56 digits), which every answer repeats."""
    for i, record in enumerate(event["records"]):
        record["recordId"] = f"{i:056d}"
    return event


def test_a_processor_buffer_of_the_tiniest_records_is_answered_within_the_response_limit(
    handler: ModuleType, lambda_context: FakeLambdaContext, caplog: pytest.LogCaptureFixture
) -> None:
    # The smallest record that stamping turns into a whole row (every column, the arrival time, the
    # id): about forty times its size in the answer. Firehose hands the function the processor
    # buffer's worth of them (as the construct configures it), as many as one request can carry.
    tiny = '{"sex":"a"}'
    one = firehose_sized_ids(build_firehose_event([tiny], arrival=ARRIVAL))
    per_record = len(json.dumps(one["records"][0])) + len(", ")
    count = min(
        TRANSFORM_BUFFER_MIB * 1024 * 1024 // len(tiny),
        (LAMBDA_PAYLOAD_LIMIT_BYTES - len(json.dumps({**one, "records": []}))) // per_record,
    )
    event = firehose_sized_ids(build_firehose_event([tiny] * count, arrival=ARRIVAL))
    assert len(json.dumps(event)) <= LAMBDA_PAYLOAD_LIMIT_BYTES

    response = handler.lambda_handler(event, lambda_context)

    assert len(json.dumps(response)) <= TRANSFORM_RESPONSE_BUDGET_BYTES < LAMBDA_PAYLOAD_LIMIT_BYTES
    answers = read_response(response)
    assert [a.record_id for a in answers] == [r["recordId"] for r in event["records"]]
    results = [a.result for a in answers]
    fitted = results.index("ProcessingFailed")
    assert (
        fitted > 1_000 and set(results[:fitted]) == {"Ok"} and set(results[fitted:]) == {"ProcessingFailed"}
    )
    assert all(a.data == b"" for a in answers[fitted:]), "records that do not fit are answered without data"
    [overflow] = [r for r in caplog.records if r.getMessage() == "valid records did not fit the response"]
    assert overflow.records == count - fitted  # type: ignore[attr-defined]


def test_a_processor_buffer_of_whole_rows_is_answered_in_full(
    handler: ModuleType, lambda_context: FakeLambdaContext
) -> None:
    rows = load_penguins().dropna().to_json(orient="records", lines=True).splitlines()
    budget = TRANSFORM_BUFFER_MIB * 1024 * 1024
    payloads = [rows[i % len(rows)] for i in range(budget // max(len(r) for r in rows))]
    event = firehose_sized_ids(build_firehose_event(payloads, arrival=ARRIVAL))

    response = handler.lambda_handler(event, lambda_context)

    assert {a.result for a in read_response(response)} == {"Ok"}
    assert len(json.dumps(response)) <= TRANSFORM_RESPONSE_BUDGET_BYTES

"""The pure transformation: one answer per record; valid rows re-emitted, invalid ones failed with reasons."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firehose_transform.transform import (
    FirehoseEventError,
    Outcome,
    records_of,
    transform_batch,
    transform_record,
)
from rookery_contracts.schema import DatasetSchema, parse_schema

# 2024-05-01T12:00:00.123Z in milliseconds.
ARRIVAL_MS = 1_714_564_800_123
PENGUIN = {
    "species": "Adelie",
    "island": "Torgersen",
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181,
    "body_mass_g": 3750.0,
    "sex": "male",
    "year": 2007,
}


@pytest.fixture(scope="module")
def schema(dataset_schema_json: str) -> DatasetSchema:
    return parse_schema(dataset_schema_json)


def firehose_record(payload: Any, record_id: str = "rec-1", arrival: object = ARRIVAL_MS) -> dict[str, Any]:
    """A Firehose input record; dicts become JSON, str/bytes are sent as they are."""
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    return {
        "recordId": record_id,
        "approximateArrivalTimestamp": arrival,
        "data": base64.b64encode(raw).decode(),
    }


def emitted(outcome: Outcome) -> dict[str, Any]:
    assert outcome.result == "Ok", outcome.reason
    text = base64.b64decode(outcome.data).decode("utf-8")
    assert text.endswith("\n") and text.count("\n") == 1, "one newline-terminated JSON object per record"
    row: dict[str, Any] = json.loads(text)
    return row


def failed(payload: Any, schema: DatasetSchema) -> str:
    record = firehose_record(payload)
    outcome = transform_record(record, schema)
    assert outcome.result == "ProcessingFailed"
    assert outcome.data == record["data"], "a failed record keeps its original data"
    assert outcome.reason
    return outcome.reason


def test_a_valid_row_keeps_schema_columns_in_order_and_gets_ingest_metadata(schema: DatasetSchema) -> None:
    row = emitted(
        transform_record(
            firehose_record(PENGUIN, "49546986683135544286507457936321625675700192471156785154"), schema
        )
    )
    assert list(row) == [
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "species",
        "island",
        "sex",
        "_ingest_ts",
        "_firehose_record_id",
    ]
    assert row["bill_length_mm"] == 39.1 and row["flipper_length_mm"] == 181 and row["sex"] == "male"
    assert "year" not in row, "fields outside the schema are not kept"
    assert row["_ingest_ts"] == "2024-05-01T12:00:00.123Z"
    assert row["_firehose_record_id"] == "49546986683135544286507457936321625675700192471156785154"


def test_missing_and_null_features_are_valid_and_emitted_as_null(schema: DatasetSchema) -> None:
    row = emitted(transform_record(firehose_record({"species": "Gentoo", "bill_length_mm": None}), schema))
    assert row["species"] == "Gentoo"
    assert row["bill_length_mm"] is None and row["body_mass_g"] is None and row["island"] is None


@pytest.mark.parametrize("target", [None, "absent"])
def test_an_unlabelled_row_is_accepted_because_preprocessing_drops_and_reports_it(
    schema: DatasetSchema, target: str | None
) -> None:
    payload = {k: v for k, v in PENGUIN.items() if k != "sex"}
    if target is None:
        payload["sex"] = None
    assert emitted(transform_record(firehose_record(payload), schema))["sex"] is None


def test_non_ascii_text_survives_as_utf8(schema: DatasetSchema) -> None:
    row = emitted(transform_record(firehose_record({**PENGUIN, "island": "Île Torgersen"}), schema))
    assert row["island"] == "Île Torgersen"


def test_surrounding_whitespace_and_a_trailing_newline_are_fine(schema: DatasetSchema) -> None:
    assert (
        emitted(transform_record(firehose_record("  " + json.dumps(PENGUIN) + "\n"), schema))["sex"] == "male"
    )


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"species": "Adelie",', "not valid JSON"),
        ("species=Adelie", "not valid JSON"),
        (json.dumps(PENGUIN) + "\n" + json.dumps(PENGUIN), "send exactly one JSON object per record"),
        ("[1, 2, 3]", "expected a JSON object of column values, got array"),
        ('"Adelie"', "expected a JSON object of column values, got string"),
        ("42", "expected a JSON object of column values, got number"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
    ids=["truncated", "not json", "two objects", "array", "string", "number", "deep nesting"],
)
def test_invalid_json_is_processing_failed(schema: DatasetSchema, payload: str, message: str) -> None:
    assert message in failed(payload, schema)


WRONG_TYPES = {
    "numeric string": (
        {"bill_length_mm": "39.1"},
        "'bill_length_mm' must be a JSON number or null, got string '39.1'",
    ),
    "numeric boolean": ({"body_mass_g": True}, "'body_mass_g' must be a JSON number or null, got boolean"),
    "numeric array": ({"body_mass_g": [3750]}, "'body_mass_g' must be a JSON number or null, got array"),
    "numeric huge int": ({"body_mass_g": 10**400}, "is not a finite number that fits a double"),
    "categorical number": ({"island": 3}, "'island' must be a JSON string or null, got number 3"),
    "categorical object": (
        {"species": {"name": "Adelie"}},
        "'species' must be a JSON string or null, got object",
    ),
    "categorical blank": ({"species": "  "}, "'species' is a blank string; send null"),
    "target number": ({"sex": 1}, "'sex' (the target) must be the class name as a JSON string"),
    "target boolean": ({"sex": False}, "'sex' (the target) must be the class name as a JSON string"),
    "target blank": ({"sex": ""}, "'sex' (the target) is a blank string"),
}


@pytest.mark.parametrize(("change", "message"), WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_wrong_types_are_processing_failed_naming_the_column(
    schema: DatasetSchema, change: dict[str, Any], message: str
) -> None:
    assert message in failed({**PENGUIN, **change}, schema)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_json_constants_are_rejected(schema: DatasetSchema, constant: str) -> None:
    payload = json.dumps(PENGUIN).replace("39.1", constant)
    assert f"{constant} is not valid JSON" in failed(payload, schema)


def test_a_number_too_large_for_a_double_is_rejected(schema: DatasetSchema) -> None:
    payload = json.dumps(PENGUIN).replace("3750.0", "1e400")
    assert "'body_mass_g' = inf is not a finite number" in failed(payload, schema)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ('{"species": "\\ud83d", "sex": "male"}', "'species' holds a lone UTF-16 surrogate escape (\\ud83d"),
        ('{"sex": "fem\\udc00"}', "'sex' holds a lone UTF-16 surrogate escape (\\udc00 at character 3)"),
        ('{"species": "Adelie", "body_mass_g": ' + "7" * 5000 + "}", "an integer literal has 5000 digits"),
        ('{"species": "Adelie", "year": -' + "1" * 4301 + "}", "an integer literal has 4301 digits"),
        ('{"species": "Adelie", "notes": [' + "9" * 1001 + "]}", "an integer literal has 1001 digits"),
    ],
    ids=[
        "surrogate in a feature",
        "surrogate in the target",
        "long int",
        "long int outside schema",
        "nested",
    ],
)
def test_text_without_utf8_form_and_overlong_integers_are_processing_failed(
    schema: DatasetSchema, payload: str, message: str
) -> None:
    assert message in failed(payload, schema)


def test_a_surrogate_escape_in_a_field_outside_the_schema_is_dropped_with_the_field(
    schema: DatasetSchema,
) -> None:
    row = emitted(transform_record(firehose_record('{"species": "Adelie", "note": "\\ud83d"}'), schema))
    assert row["species"] == "Adelie" and "note" not in row


def test_a_surrogate_pair_escape_is_one_character(schema: DatasetSchema) -> None:
    row = emitted(transform_record(firehose_record('{"species": "\\ud83d\\udc27"}'), schema))
    assert row["species"] == "\N{PENGUIN}"


def test_duplicate_keys_are_rejected_rather_than_silently_resolved(schema: DatasetSchema) -> None:
    payload = '{"species": "Adelie", "sex": "male", "sex": "female"}'
    assert "duplicate keys ['sex']" in failed(payload, schema)


def test_every_problem_of_a_row_is_reported_at_once(schema: DatasetSchema) -> None:
    reason = failed({**PENGUIN, "bill_length_mm": "x", "island": 7, "sex": 0}, schema)
    assert "'bill_length_mm'" in reason and "'island'" in reason and "'sex'" in reason


def test_a_row_with_none_of_the_schema_columns_is_rejected(schema: DatasetSchema) -> None:
    reason = failed({"Species": "Adelie", "Sex": "male"}, schema)
    assert "carries none of the dataset's columns" in reason and "['Sex', 'Species']" in reason


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("not base64!", "data is not valid base64"),
        ("eyJh", None),  # valid base64 of '{"a' (invalid JSON, checked below)
        ("eyJhIjox", None),
        ("eyJ", "data is not valid base64"),  # bad padding
        ("", "record is empty"),
        (base64.b64encode(b"   \n").decode(), "record is empty"),
        (
            base64.b64encode(b'{"species": "\xff"}').decode(),
            "data is not UTF-8 text (byte 0xff at offset 13)",
        ),
        (None, "record has no base64 'data' string (got null)"),
    ],
)
def test_undecodable_data_is_processing_failed(
    schema: DatasetSchema, data: str | None, message: str | None
) -> None:
    record = {"recordId": "r", "approximateArrivalTimestamp": ARRIVAL_MS, "data": data}
    outcome = transform_record(record, schema)
    assert outcome.result == "ProcessingFailed"
    assert outcome.reason
    if message:
        assert message in outcome.reason
    else:
        assert "not valid JSON" in outcome.reason


@pytest.mark.parametrize("arrival", [None, "1714564800123", -1, 1.7e12, True, 10**20])
def test_a_record_without_a_usable_arrival_time_is_processing_failed(
    schema: DatasetSchema, arrival: object
) -> None:
    outcome = transform_record(firehose_record(PENGUIN, arrival=arrival), schema)
    assert outcome.result == "ProcessingFailed"
    assert outcome.reason and "approximateArrivalTimestamp" in outcome.reason


def test_id_column_accepts_strings_and_integers_only() -> None:
    schema = parse_schema(
        json.dumps(
            {"name": "t", "target": "y", "positive_class": "yes", "numeric": ["x"], "id_column": "row_id"}
        )
    )
    assert (
        emitted(transform_record(firehose_record({"row_id": 7, "x": 1.5, "y": "yes"}), schema))["row_id"] == 7
    )
    assert emitted(transform_record(firehose_record({"row_id": "a7", "x": 1}), schema))["row_id"] == "a7"
    assert "(the id) must be a JSON string or integer, got number 7.5" in failed(
        {"row_id": 7.5, "x": 1}, schema
    )


def test_the_group_column_is_kept_with_the_id_rule() -> None:
    schema = parse_schema(
        json.dumps(
            {"name": "t", "target": "y", "positive_class": "yes", "numeric": ["x"], "group_column": "person"}
        )
    )
    kept = emitted(transform_record(firehose_record({"person": "p1", "x": 1.5, "y": "yes", "z": 0}), schema))
    assert kept["person"] == "p1" and "z" not in kept
    assert "(the group) is a blank string" in failed({"person": " ", "x": 1}, schema)


def test_an_empty_batch_gives_an_empty_answer(schema: DatasetSchema) -> None:
    assert transform_batch([], schema) == []


def test_a_record_without_an_id_makes_the_batch_malformed(schema: DatasetSchema) -> None:
    record = firehose_record(PENGUIN)
    del record["recordId"]
    with pytest.raises(FirehoseEventError, match="record 1 has no 'recordId'"):
        transform_batch([firehose_record(PENGUIN), record], schema)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"Records": []}, "the event has no 'records' list"),
        ([], "expected a Firehose transformation event"),
        ({"records": [{"recordId": "a"}, "junk"]}, "record 1 is string, not an object"),
    ],
)
def test_an_event_without_records_is_malformed(event: object, message: str) -> None:
    with pytest.raises(FirehoseEventError, match=message):
        records_of(event)


def test_a_large_batch_answers_every_record_in_order(schema: DatasetSchema) -> None:
    bad_every = 7
    records = [
        firehose_record(
            {**PENGUIN, "body_mass_g": "heavy"} if i % bad_every == 0 else {**PENGUIN, "body_mass_g": i},
            f"r{i:05d}",
        )
        for i in range(10_000)
    ]
    outcomes = transform_batch(records, schema)
    assert len(outcomes) == len(records)
    assert [o.record_id for o in outcomes] == [r["recordId"] for r in records]
    assert [o.result for o in outcomes] == [
        "ProcessingFailed" if i % bad_every == 0 else "Ok" for i in range(10_000)
    ]
    assert emitted(outcomes[9_999])["body_mass_g"] == 9_999


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
numbers = st.none() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False)
labels = st.none() | st.text(min_size=1, max_size=8).filter(str.strip)
# Rows that follow the schema (some columns left out), so the Ok path is exercised too.
typed_rows = st.fixed_dictionaries(
    {},
    optional={
        "bill_length_mm": numbers,
        "body_mass_g": numbers,
        "species": labels,
        "island": labels,
        "sex": labels,
        "year": json_values,
    },
)
column_names = st.sampled_from(["species", "island", "sex", "bill_length_mm", "body_mass_g", "Sex", "other"])
payloads = st.one_of(
    typed_rows.map(json.dumps),
    typed_rows.map(json.dumps),
    st.dictionaries(column_names, json_values, max_size=6).map(json.dumps),
    st.text(max_size=30),
    st.binary(max_size=30),
)
timestamps = st.integers(min_value=0, max_value=4_102_444_800_000)
arrivals = st.one_of(timestamps, timestamps, timestamps, st.none(), st.text(max_size=3))


def as_record(payload: str | bytes, arrival: object, encode: bool) -> dict[str, Any]:
    raw = payload.encode("utf-8") if isinstance(payload, str) else payload
    # Unencoded text stands for a producer that skipped base64 (or garbage on the wire).
    data = base64.b64encode(raw).decode() if encode else raw.decode("latin-1")
    return {"approximateArrivalTimestamp": arrival, "data": data}


input_records = st.lists(
    st.builds(as_record, payloads, arrivals, st.booleans() | st.just(True)),
    max_size=25,
)


@settings(max_examples=200, deadline=None, database=None)
@given(input_records)
def test_property_records_out_equal_records_in(schema: DatasetSchema, records: list[dict[str, Any]]) -> None:
    for i, record in enumerate(records):
        record["recordId"] = f"id-{i}"
    outcomes = transform_batch(records, schema)
    assert [o.record_id for o in outcomes] == [r["recordId"] for r in records]
    for outcome in outcomes:
        if outcome.ok:
            assert list(emitted(outcome))[-2:] == ["_ingest_ts", "_firehose_record_id"]
            assert set(emitted(outcome)) == {*schema.columns, "_ingest_ts", "_firehose_record_id"}
        else:
            assert outcome.result == "ProcessingFailed" and outcome.reason

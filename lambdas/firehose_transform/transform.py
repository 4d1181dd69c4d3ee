"""Pure Firehose data transformation: validate each record against the dataset schema and re-emit it.

Contract (Firehose Lambda data transformation): every input record gets exactly one output record
with the same ``recordId``; ``Ok`` records carry the new data, ``ProcessingFailed`` records are written
by Firehose under the error prefix. ``Dropped`` is never used: nothing is discarded silently, and
records out always equal records in.

A record is valid when its data is base64 of one UTF-8 JSON object (surrounding whitespace allowed)
whose schema columns have these types (decided with the preprocessing step in mind):

- numeric columns: a finite JSON number, or null/missing. Booleans and numeric strings such as
  ``"12"`` are wrong types: coercing them here would hide a producer bug, and the Glue raw table
  types these columns as numbers. Missing values are valid because preprocessing imputes them.
- categorical columns: a non-blank JSON string, or null/missing (preprocessing imputes them).
  A blank string is rejected rather than becoming a category of its own; send null instead.
- the target: a non-blank JSON string (the class name, compared with ``positive_class``), or
  null/missing. Unlabelled records are accepted because preprocessing drops and reports them; a
  blank string is rejected because it would silently become the negative class.
- the id column (when the schema has one): a non-blank string or an integer, or null/missing.
- the group column (when the schema has one): the same rule as the id.
- fields outside the schema are not kept; a record that carries none of the schema's columns is
  rejected (field names are case-sensitive, so this is almost always a producer using other names).
- duplicate keys, ``NaN``/``Infinity``, numbers too large for a double, integer literals longer than
  :data:`MAX_INTEGER_DIGITS` (in any field) and strings holding a lone UTF-16 surrogate escape (a
  string cut mid-character, which has no UTF-8 form) are rejected.

A valid record is re-emitted as one newline-terminated JSON object, stamped as
``rookery_contracts.ingest`` says: the schema columns in schema order (missing ones as null), then
``_ingest_ts`` (ISO-8601 UTC, milliseconds, from the record's ``approximateArrivalTimestamp``) and
``_firehose_record_id``. A failed record keeps its original data
and gets a reason, which the handler logs (Firehose's error output has no place for it).

No record can make the transformation raise: whatever its bytes, an unforeseen failure while
handling one record becomes that record's ``ProcessingFailed`` answer. Only an event that is not a
Firehose event at all (no ``records`` list, a record without a ``recordId``) is refused as a whole,
because no answer could be matched to its records.

The answer is bounded: :func:`fit_response` keeps the serialized response within
``rookery_contracts.ingest.TRANSFORM_RESPONSE_BUDGET_BYTES`` by answering the records that no longer
fit as ``ProcessingFailed`` (Firehose keeps their original data under the error prefix), so a batch
of tiny records that stamping would grow past Lambda's response limit cannot fail the whole batch.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rookery_contracts import ingest
from rookery_contracts.schema import DatasetSchema

OK: Literal["Ok"] = "Ok"
PROCESSING_FAILED: Literal["ProcessingFailed"] = "ProcessingFailed"
_PREVIEW = 40
# Longer integer literals are refused before Python converts them: the conversion costs quadratic
# time and, past sys.get_int_max_str_digits(), raises. No value that fits a double needs more.
MAX_INTEGER_DIGITS = 1000
_HOW_TO_INVOKE = (
    "invoke the function from Firehose, or build the event with "
    "firehose_transform.events.build_firehose_event"
)


class FirehoseEventError(ValueError):
    """The event is not a Firehose transformation event: no record can be answered for."""


class RecordError(ValueError):
    """One record is invalid; the message is the reason reported for it."""


@dataclass(frozen=True)
class Outcome:
    """The answer for one input record, in Firehose's terms."""

    record_id: str
    result: Literal["Ok", "ProcessingFailed"]
    data: str  # base64, as Firehose expects it
    reason: str | None = None
    over_budget: bool = False  # a valid record failed only because the answer had no room left for it

    @property
    def ok(self) -> bool:
        return self.result == OK


def records_of(event: object) -> Sequence[Mapping[str, Any]]:
    """The event's records, after checking it has the Firehose shape (``{"records": [...]}``)."""
    if not isinstance(event, Mapping):
        raise FirehoseEventError(
            f"expected a Firehose transformation event (a JSON object), got {_json_type(event)}; "
            f"{_HOW_TO_INVOKE}"
        )
    records = event.get("records")
    if not isinstance(records, list):
        raise FirehoseEventError(
            f"the event has no 'records' list (keys: {sorted(event)[:10]}); {_HOW_TO_INVOKE}"
        )
    for position, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise FirehoseEventError(
                f"record {position} is {_json_type(record)}, not an object with a recordId"
            )
    return records


def transform_batch(records: Iterable[Mapping[str, Any]], schema: DatasetSchema) -> list[Outcome]:
    """One outcome per record, in input order. Raises ``FirehoseEventError`` for a record without an id."""
    return [transform_record(record, schema, position=i) for i, record in enumerate(records)]


def transform_record(record: Mapping[str, Any], schema: DatasetSchema, *, position: int = 0) -> Outcome:
    """Validate and re-emit one Firehose record (``recordId``, ``approximateArrivalTimestamp``, ``data``)."""
    if not isinstance(record, Mapping):
        raise FirehoseEventError(f"record {position} is {_json_type(record)}, not an object with a recordId")
    record_id = record.get("recordId")
    if not isinstance(record_id, str) or not record_id:
        # Without an id no answer can be matched to the record: the whole batch is malformed.
        raise FirehoseEventError(f"record {position} has no 'recordId' string; Firehose always sends one")
    data = record.get("data")
    original = data if isinstance(data, str) else ""
    try:
        ingest_ts = ingest_timestamp(record.get("approximateArrivalTimestamp"))
        row = parse_row(decode_data(data))
        values = validate_row(row, schema)
        stamped = ingest.stamp(values, ingest_ts=ingest_ts, record_id=record_id)
        line = json.dumps(stamped, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n"
        return Outcome(record_id, OK, base64.b64encode(line.encode("utf-8")).decode("ascii"))
    except RecordError as exc:
        return Outcome(record_id, PROCESSING_FAILED, original, str(exc))
    except Exception as exc:  # one record's failure must not fail the batch
        return Outcome(
            record_id,
            PROCESSING_FAILED,
            original,
            f"could not be processed ({type(exc).__name__}); the record is kept under the error prefix",
        )


def fit_response(
    outcomes: Sequence[Outcome], budget: int = ingest.TRANSFORM_RESPONSE_BUDGET_BYTES
) -> list[Outcome]:
    """The outcomes, with those that no longer fit ``budget`` bytes of response answered without data.

    Sizes are those of the response as Lambda serializes it (``json.dumps``). Every record is
    first reserved its smallest answer (its id, ``ProcessingFailed``, no data), which is never
    larger than the record in the request; outcomes then take their full size in order while it
    fits. One that does not fit is answered ``ProcessingFailed`` without data, with a reason saying
    why (Firehose writes its original data under the error prefix).
    """
    smallest = [_answer_bytes(o.record_id, PROCESSING_FAILED, "") for o in outcomes]
    spare = budget - len(json.dumps({"records": []})) - sum(smallest) - 2 * max(len(outcomes) - 1, 0)
    fitted: list[Outcome] = []
    for outcome, floor in zip(outcomes, smallest, strict=True):
        extra = _answer_bytes(outcome.record_id, outcome.result, outcome.data) - floor
        if extra <= spare:
            spare -= extra
            fitted.append(outcome)
            continue
        if outcome.ok:
            reason = (
                f"valid, but the batch's answer would exceed {budget} bytes (Lambda's response limit); "
                "send whole rows rather than many tiny records, and replay this one from the error prefix"
            )
            fitted.append(Outcome(outcome.record_id, PROCESSING_FAILED, "", reason, over_budget=True))
        else:
            fitted.append(Outcome(outcome.record_id, PROCESSING_FAILED, "", outcome.reason))
    return fitted


def _answer_bytes(record_id: str, result: str, data: str) -> int:
    return len(json.dumps({"recordId": record_id, "result": result, "data": data}))


def ingest_timestamp(arrival_ms: object) -> str:
    """``approximateArrivalTimestamp`` checked to be milliseconds since the epoch, then stamped as ``ingest``
    formats it (ISO-8601 UTC with milliseconds)."""
    if isinstance(arrival_ms, bool) or not isinstance(arrival_ms, int) or arrival_ms < 0:
        raise RecordError(
            f"approximateArrivalTimestamp = {_preview(arrival_ms)} is not milliseconds since the epoch "
            "(Firehose always sets it)"
        )
    try:
        return ingest.ingest_timestamp(arrival_ms)
    except ValueError as exc:
        raise RecordError(str(exc)) from None


def decode_data(data: object) -> str:
    """The record's base64 data as text; strict: no stray characters, UTF-8 only, not empty."""
    if not isinstance(data, str):
        raise RecordError(f"record has no base64 'data' string (got {_json_type(data)})")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"data is not valid base64 ({exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(
            f"data is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); send UTF-8 JSON"
        ) from None
    if not text.strip():
        raise RecordError("record is empty; send one JSON object per record")
    return text


def parse_row(text: str) -> dict[str, Any]:
    """Parse one JSON object; duplicate keys and non-finite constants are errors."""
    try:
        row = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        hint = "; send exactly one JSON object per record" if exc.msg == "Extra data" else ""
        raise RecordError(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}){hint}"
        ) from None
    except RecursionError:
        raise RecordError("JSON is nested too deeply; send a flat object of column values") from None
    if not isinstance(row, dict):
        raise RecordError(f"expected a JSON object of column values, got {_json_type(row)}")
    return row


def validate_row(row: Mapping[str, Any], schema: DatasetSchema) -> dict[str, Any]:
    """The schema columns of ``row`` in schema order (missing ones as None); every type problem at once."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    checks = (
        ((schema.id_column,) if schema.id_column else (), _check_id),
        ((schema.group_column,) if schema.group_column not in (None, schema.id_column) else (), _check_group),
        (schema.numeric, _check_numeric),
        (schema.categorical, _check_text),
        ((schema.target,), _check_target),
    )
    for columns, check in checks:
        for column in columns:
            value = row.get(column)
            problem = None if value is None else check(value)
            if problem:
                problems.append(f"{column!r} {problem}")
            values[column] = value
    if problems:
        raise RecordError("; ".join(problems))
    if all(v is None for v in values.values()):
        raise RecordError(
            f"carries none of the dataset's columns {list(schema.columns)} (names are case-sensitive); "
            f"got fields {sorted(row)[:10]}"
        )
    return values


def _check_numeric(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a JSON number or null, got {_json_type(value)} {_preview(value)}"
    try:
        finite = math.isfinite(float(value))
    except OverflowError:
        finite = False
    return None if finite else f"= {_preview(value)} is not a finite number that fits a double"


def _check_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"must be a JSON string or null, got {_json_type(value)} {_preview(value)}"
    if not value.strip():
        return "is a blank string; send null (or omit the field) for a missing value"
    return _lone_surrogate(value)


def _check_target(value: Any) -> str | None:
    if not isinstance(value, str):
        return (
            f"(the target) must be the class name as a JSON string, or null when unknown; "
            f"got {_json_type(value)} {_preview(value)}"
        )
    if not value.strip():
        return "(the target) is a blank string; send null (or omit it) when the label is unknown"
    return _lone_surrogate(value)


def _check_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    if isinstance(value, str):
        return (
            _lone_surrogate(value) if value.strip() else "(the id) is a blank string; send null or a real id"
        )
    return f"(the id) must be a JSON string or integer, got {_json_type(value)} {_preview(value)}"


def _check_group(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    if isinstance(value, str):
        return None if value.strip() else "(the group) is a blank string; send null or the entity's id"
    return f"(the group) must be a JSON string or integer, got {_json_type(value)} {_preview(value)}"


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        dupes = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
        raise RecordError(f"duplicate keys {dupes}; send each field once")
    return obj


def _lone_surrogate(value: str) -> str | None:
    """The problem with a string that has no UTF-8 form, or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"holds a lone UTF-16 surrogate escape (\\u{ord(value[exc.start]):04x} at character "
            f"{exc.start}): the string was cut mid-character; send whole characters"
        )
    return None


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise RecordError(
            f"an integer literal has {len(digits.lstrip('-'))} digits (at most {MAX_INTEGER_DIGITS}); "
            "no column value needs more: send a number that fits a double"
        )
    return int(digits)


def _reject_constant(name: str) -> float:
    raise RecordError(f"{name} is not valid JSON; send a finite number or null")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _preview(value: object) -> str:
    if isinstance(value, list | dict):
        return ""
    text = repr(value)
    return text if len(text) <= _PREVIEW else text[: _PREVIEW - 3] + "..."

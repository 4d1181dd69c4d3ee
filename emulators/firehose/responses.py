"""Firehose on the wire: the transformation response a function must answer with, and what Firehose
writes to S3 (prefixes evaluated from their expressions, objects named, error records).

A transformation response answers every record of the event once, by ``recordId``, with
``result`` ``Ok`` (``data``: the transformed record, base64), ``Dropped`` or ``ProcessingFailed``.
Records that could not be delivered are written under the error prefix as Firehose's error-record
JSON lines.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

from emulators.firehose.exceptions import IngestionError

Compression = Literal["UNCOMPRESSED", "GZIP"]

RESULTS: Final = ("Ok", "ProcessingFailed", "Dropped")
# A stream's version starts at 1 and grows with each configuration change; a local stream has one.
STREAM_VERSION: Final = 1
# What Firehose writes for a record the function answered with ProcessingFailed.
PROCESSING_FAILED_OUTPUT: Final = "processing-failed"
PROCESSING_FAILED_CODE: Final = "Lambda.ProcessingFailedStatus"
PROCESSING_FAILED_MESSAGE: Final = "ProcessingFailed status set for record"
# What Firehose writes for every record of a batch whose invocation kept failing.
FUNCTION_ERROR_CODE: Final = "Lambda.FunctionError"


# --- The transformation response -----------------------------------------------------------------


def answered(
    invocation: int, sent: Sequence[Mapping[str, Any]], response: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The function's answer for each record ``sent``, in order; :class:`IngestionError` for an
    answer out of contract (a record missing or answered twice, an unknown ``result``)."""
    returned = {r.get("recordId"): r for r in response.get("records", [])}
    if set(returned) != {r["recordId"] for r in sent} or len(returned) != len(sent):
        raise IngestionError(
            f"invocation {invocation}: the answered record ids do not match the {len(sent)} sent; "
            "a transform must answer every record once with its recordId"
        )
    out = [returned[raw["recordId"]] for raw in sent]
    for raw, record in zip(sent, out, strict=True):
        if record.get("result") not in RESULTS:
            raise IngestionError(
                f"invocation {invocation}, record {raw['recordId']}: result {record.get('result')!r} "
                f"is not one of {RESULTS}"
            )
    return out


def error_record(
    raw: Mapping[str, Any], *, code: str, message: str, attempts: int, ended_ms: int, lambda_arn: str
) -> bytes:
    """One line of Firehose's processing-failed output for the event record ``raw``."""
    line = {
        "attemptsMade": attempts,
        "arrivalTimestamp": raw["approximateArrivalTimestamp"],
        "errorCode": code,
        "errorMessage": message,
        "attemptEndingTimestamp": ended_ms,
        "rawData": raw["data"],
        "lambdaArn": lambda_arn,
    }
    return (json.dumps(line, separators=(",", ":")) + "\n").encode("utf-8")


# --- Where objects land --------------------------------------------------------------------------

_EXPRESSION = re.compile(r"!\{([a-zA-Z]+):([^}]*)\}")
_DATE_PARTS: Final = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}


def _java_date(pattern: str, moment: datetime) -> str:
    """A DateTimeFormatter pattern limited to the fields S3 prefixes use (yyyy MM dd HH mm ss)."""
    out = []
    for token in re.findall(r"[A-Za-z]+|[^A-Za-z]+", pattern):
        if token[0].isalpha():
            if token not in _DATE_PARTS:
                raise IngestionError(
                    f"timestamp pattern {pattern!r}: {token!r} is not supported locally; "
                    "use yyyy, MM, dd, HH, mm, ss"
                )
            out.append(moment.strftime(_DATE_PARTS[token]))
        else:
            out.append(token)
    return "".join(out)


def evaluate_prefix(template: str, *, timestamp: datetime, error_output_type: str | None = None) -> str:
    """Evaluate Firehose's ``!{timestamp:...}`` and ``!{firehose:...}`` expressions (UTC) as Firehose does."""

    def replace(match: re.Match[str]) -> str:
        namespace, name = match.group(1), match.group(2)
        if namespace == "timestamp":
            return _java_date(name, timestamp.astimezone(UTC))
        if namespace == "firehose" and name == "error-output-type":
            if error_output_type is None:
                raise IngestionError(
                    f"{template!r} uses !{{firehose:error-output-type}} outside an error prefix"
                )
            return error_output_type
        if namespace == "firehose" and name == "random-string":
            return uuid.uuid4().hex[:11]
        raise IngestionError(f"prefix expression {match.group(0)!r} in {template!r} is not supported locally")

    return _EXPRESSION.sub(replace, template)


def object_name(stream: str, moment: datetime, object_id: str, compression: Compression) -> str:
    """``<stream>-<version>-YYYY-MM-DD-HH-MM-SS-<uuid>`` (+ ``.gz``): the suffix of every Firehose object."""
    suffix = ".gz" if compression == "GZIP" else ""
    return f"{stream}-{STREAM_VERSION}-{moment.astimezone(UTC):%Y-%m-%d-%H-%M-%S}-{object_id}{suffix}"

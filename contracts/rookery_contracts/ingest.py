"""What the Firehose transform receives, and the record it writes for every valid input record.

Firehose hands the transform at most :data:`TRANSFORM_BUFFER_MIB` of records per invocation and
retries a failed invocation :data:`TRANSFORM_RETRIES` times before writing the batch under the
error prefix. The transform's answer stays within :data:`TRANSFORM_RESPONSE_BUDGET_BYTES` whatever
the batch holds. A valid record is re-emitted as one newline-terminated JSON object: the dataset
schema's columns in schema order, then the ingest metadata (:func:`stamp`). Firehose writes the
records as they are (:data:`DELIVERY_COMPRESSION`): JSON lines that the Glue raw table, Athena and
the preprocess job read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

# Ingest metadata stamped on every valid record, after the schema's columns; both are JSON strings.
INGEST_TS_COLUMN: Final = "_ingest_ts"  # the record's arrival at Firehose (ingest_timestamp)
RECORD_ID_COLUMN: Final = "_firehose_record_id"  # Firehose's recordId
METADATA_COLUMNS: Final = (INGEST_TS_COLUMN, RECORD_ID_COLUMN)

# The transform's processor buffer: at most this much per invocation (the Lambda payload ceiling is
# 6 MB), flushed at least this often, retried this many times.
TRANSFORM_BUFFER_MIB: Final = 1
TRANSFORM_INTERVAL_SECONDS: Final = 60
TRANSFORM_RETRIES: Final = 3
# Lambda's limit on a synchronous request and on its response alike (6 MB); Firehose fails the whole
# batch when the transform's response is larger. Stamping grows a tiny record tens of times (every
# schema column, the arrival time and the record id are written out), so the transform keeps its
# serialized response within a budget below the limit, with room for the runtime's framing.
LAMBDA_PAYLOAD_LIMIT_BYTES: Final = 6 * 1024 * 1024
TRANSFORM_RESPONSE_BUDGET_BYTES: Final = LAMBDA_PAYLOAD_LIMIT_BYTES - 256 * 1024
# Delivered objects are plain JSON lines.
DELIVERY_COMPRESSION: Final = "UNCOMPRESSED"


def ingest_timestamp(arrival_ms: int) -> str:
    """``approximateArrivalTimestamp`` (ms since the epoch) as ISO-8601 UTC with milliseconds.

    Raises ``ValueError`` when the moment cannot be represented.
    """
    seconds, millis = divmod(arrival_ms, 1000)
    try:
        moment = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"approximateArrivalTimestamp = {arrival_ms} is out of range") from None
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{millis:03d}Z"


def stamp(values: Mapping[str, Any], *, ingest_ts: str, record_id: str) -> dict[str, Any]:
    """The record as delivered: ``values`` (the schema's columns, in order), then the ingest metadata."""
    return {**values, INGEST_TS_COLUMN: ingest_ts, RECORD_ID_COLUMN: record_id}

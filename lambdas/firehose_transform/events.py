"""Build Firehose transformation events from raw records, and read the handler's answer back.

The local demo pushes dataset rows through the real handler with these, the way Firehose would
invoke it: ``lambda_handler(build_firehose_event(rows), context)``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LOCAL_STREAM_ARN = "arn:aws:firehose:eu-west-1:000000000000:deliverystream/rookery-local"


def build_firehose_event(
    payloads: Iterable[bytes | str],
    *,
    arrival: datetime | None = None,
    delivery_stream_arn: str = LOCAL_STREAM_ARN,
    invocation_id: str = "00000000-0000-0000-0000-000000000000",
) -> dict[str, Any]:
    """A Direct PUT transformation event with one record per payload (str payloads are UTF-8 encoded).

    Record ids are the payload's position, zero-padded; ``arrival`` (default: now) must be timezone-aware.
    """
    moment = arrival or datetime.now(UTC)
    if moment.tzinfo is None:
        raise ValueError("arrival must be timezone-aware, e.g. datetime(2024, 5, 1, tzinfo=UTC)")
    arrival_ms = int(moment.timestamp() * 1000)
    region = delivery_stream_arn.split(":")[3]
    return {
        "invocationId": invocation_id,
        "deliveryStreamArn": delivery_stream_arn,
        "region": region,
        "records": [
            {
                "recordId": f"{i:020d}",
                "approximateArrivalTimestamp": arrival_ms,
                "data": base64.b64encode(p.encode("utf-8") if isinstance(p, str) else p).decode("ascii"),
            }
            for i, p in enumerate(payloads)
        ],
    }


@dataclass(frozen=True)
class ReturnedRecord:
    record_id: str
    result: str
    data: bytes


def read_response(response: Mapping[str, Any]) -> list[ReturnedRecord]:
    """The handler's response records with their data base64-decoded (Ok data is JSON lines)."""
    return [
        ReturnedRecord(r["recordId"], r["result"], base64.b64decode(r.get("data") or ""))
        for r in response["records"]
    ]

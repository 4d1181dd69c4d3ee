"""Endpoint data capture as SageMaker writes it: which payloads are text, where the files land.

The Serving stack sets ``CaptureContentTypeHeader`` from these lists; the local endpoint encodes
and files its capture records by the same rules, so Model Monitor and anything reading the raw
bucket see one format from both.

SageMaker writes one JSON object per captured invocation (JSON lines)::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "39.1,18.7,181,3750,Adelie,Torgersen", "encoding": "CSV"},
                     "endpointOutput": {...,"mode": "OUTPUT", ...}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<the caller's InferenceId>",
                       "inferenceTime": "2024-05-01T10:00:00Z"},
     "eventVersion": "0"}

A payload whose content type is listed as CSV or JSON is kept as text with that encoding; any
other payload (and text that is not UTF-8) is base64 (``BASE64``). ``inferenceId`` is present only
when the caller passed one.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final, Literal

# CaptureContentTypeHeader: the endpoint's CSV and JSON answers and requests stay readable text.
CSV_CONTENT_TYPES: Final = ("text/csv",)
JSON_CONTENT_TYPES: Final = ("application/json", "application/jsonlines")
EVENT_VERSION: Final = "0"

Encoding = Literal["CSV", "JSON", "BASE64"]


def media_type(content_type: str | None) -> str:
    """``text/csv; charset=utf-8`` -> ``text/csv``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def text_encoding(content_type: str | None) -> Encoding:
    """How SageMaker records a payload of ``content_type`` (text that is not UTF-8 is BASE64 anyway)."""
    media = media_type(content_type)
    if media in CSV_CONTENT_TYPES:
        return "CSV"
    if media in JSON_CONTENT_TYPES:
        return "JSON"
    return "BASE64"


def capture_key(prefix: str, endpoint: str, variant: str, opened: dt.datetime, file_id: str) -> str:
    """The key of one capture file: ``<prefix><endpoint>/<variant>/yyyy/mm/dd/hh/MM-SS-mmm-<id>.jsonl``.

    ``opened`` (UTC) is when the file was started; SageMaker names files by that minute, second and
    millisecond, after the hour folder of the invocations they hold.
    """
    at = opened.astimezone(dt.UTC)
    folder = at.strftime("%Y/%m/%d/%H")
    name = f"{at:%M-%S}-{at.microsecond // 1000:03d}-{file_id}.jsonl"
    return f"{prefix}{endpoint}/{variant}/{folder}/{name}"


_OPENED: Final = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})/(\d{2})-(\d{2})-(\d{3})-[^/]+\.jsonl$")


def capture_opened(key: str) -> dt.datetime | None:
    """When the capture file at ``key`` was started (UTC, to the millisecond), read back from the name
    :func:`capture_key` gives it; None for a key not of that layout."""
    found = _OPENED.search(key)
    if found is None:
        return None
    year, month, day, hour, minute, second, milli = (int(part) for part in found.groups())
    try:
        return dt.datetime(year, month, day, hour, minute, second, milli * 1000, tzinfo=dt.UTC)
    except ValueError:
        return None

"""From an S3 "Object Created" EventBridge event to a decision: ignore the object, or start the pipeline.

Pure: no AWS calls. The decision to start carries everything ``StartPipelineExecution`` needs,
including the idempotency token. The token is a SHA-256 over the pipeline, bucket, key and the
object's version id (its ETag when the bucket is unversioned or the version is S3's literal
``"null"``), so a redelivered event, or the same event retried by Lambda, yields the same token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent

from pipeline_trigger.settings import Settings
from rookery_contracts import raw_objects

EVENT_SOURCE = "aws.s3"
DETAIL_TYPE = "Object Created"
TOKEN_VERSION = "rookery-trigger/v1"
# Marks the token in the execution description, where the duplicate check finds it again.
TOKEN_LABEL = "trigger-token"
# Executions started for an event are created after the event's time; allow for clock skew.
CLOCK_SKEW = timedelta(minutes=5)
# Event times whose duplicate-check window (CLOCK_SKEW either side, in UTC) is representable.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + CLOCK_SKEW
_LATEST = datetime.max.replace(tzinfo=UTC) - CLOCK_SKEW
_DESCRIPTION_MAX = 3072  # StartPipelineExecution's PipelineExecutionDescription limit


class MalformedEventError(ValueError):
    """The event is not a usable S3 "Object Created" EventBridge event; the message says what is wrong."""


@dataclass(frozen=True)
class CreatedObject:
    """The object a notification is about (the key URL-decoded, as Powertools reads it)."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size: int | None
    event_time: datetime

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def revision(self) -> str:
        """What tells two writes of this key apart: the version id, else the ETag."""
        return f"version {self.version_id}" if self.version_id else f"etag {self.etag}"


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class Start:
    pipeline_name: str
    parameters: tuple[tuple[str, str], ...]
    input_uri: str
    client_request_token: str
    description: str
    created_after: datetime  # executions for this token cannot be older (the duplicate check's window)


def parse_object_created(event: object) -> CreatedObject:
    """Read an S3 EventBridge notification; raise ``MalformedEventError`` naming the bad field."""
    if not isinstance(event, Mapping):
        raise MalformedEventError(f"expected an EventBridge event object, got {type(event).__name__}")
    source, detail_type = event.get("source"), event.get("detail-type")
    if source != EVENT_SOURCE or detail_type != DETAIL_TYPE:
        raise MalformedEventError(
            f"expected source {EVENT_SOURCE!r} and detail-type {DETAIL_TYPE!r}, got {source!r} and "
            f"{detail_type!r}; the EventBridge rule must match only S3 'Object Created' events "
            "of the raw bucket"
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("the event has no 'detail' object")
    for path in (("bucket", "name"), ("object", "key")):
        parent = detail.get(path[0])
        value = parent.get(path[1]) if isinstance(parent, Mapping) else None
        if not isinstance(value, str) or not value:
            raise MalformedEventError(f"detail.{'.'.join(path)} is missing or not a non-empty string")
    notification = S3EventBridgeNotificationEvent(dict(event))
    obj = notification.detail.object
    version_id = _optional_text(obj.get("version-id"), "detail.object.version-id")
    etag = _optional_text(obj.get("etag"), "detail.object.etag")
    if version_id == "null":
        # S3 reports the literal "null" version for unversioned writes; it does not identify a write.
        version_id = None
    if not version_id and not etag:
        raise MalformedEventError(
            "detail.object has neither 'version-id' nor 'etag', so a redelivery could not be recognised"
        )
    size = obj.get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise MalformedEventError(f"detail.object.size = {size!r} is not a byte count")
    return CreatedObject(
        bucket=notification.detail.bucket.name,
        key=obj.key,
        version_id=version_id,
        etag=etag,
        size=size,
        event_time=_event_time(event.get("time")),
    )


def request_token(pipeline_name: str, obj: CreatedObject) -> str:
    """Deterministic ``ClientRequestToken`` (64 hex characters; the API takes 32..128)."""
    identity = "\n".join((TOKEN_VERSION, pipeline_name, obj.bucket, obj.key, obj.revision))
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def plan(obj: CreatedObject, settings: Settings) -> Ignore | Start:
    """Ignore error output, objects outside the dataset's prefix, folder markers and what Preprocess
    skips (``rookery_contracts.raw_objects``); else start a run."""
    if obj.key.startswith(settings.error_prefix):
        return Ignore(
            f"{obj.uri} is Firehose error output (under {settings.error_prefix!r}), not training data"
        )
    if not obj.key.startswith(settings.data_prefix):
        return Ignore(f"{obj.uri} is outside the dataset prefix {settings.data_prefix!r}")
    if obj.key.endswith("/"):
        return Ignore(f"{obj.uri} is a folder marker, not data")
    skipped = raw_objects.skip_reason(obj.key[len(settings.data_prefix) :])
    if skipped:
        return Ignore(f"{obj.uri} is {skipped}, which Preprocess does not read")
    if obj.size == 0:
        return Ignore(f"{obj.uri} is empty")
    input_uri = f"s3://{obj.bucket}/{settings.data_prefix}"
    token = request_token(settings.pipeline_name, obj)
    return Start(
        pipeline_name=settings.pipeline_name,
        parameters=((settings.input_parameter, input_uri),),
        input_uri=input_uri,
        client_request_token=token,
        description=_description(input_uri, obj, token),
        created_after=obj.event_time - CLOCK_SKEW,
    )


def token_marker(token: str) -> str:
    return f"[{TOKEN_LABEL} {token}]"


def _description(input_uri: str, obj: CreatedObject, token: str) -> str:
    marker = token_marker(token)
    text = f"Retrain on {input_uri}: new object {obj.uri} ({obj.revision})"
    room = _DESCRIPTION_MAX - len(marker) - 1
    if len(text) > room:
        text = text[: room - 3] + "..."
    return f"{text} {marker}"


def _optional_text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedEventError(f"{where} = {value!r} is not a string")
    return value or None


def _event_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise MalformedEventError(f"the event's 'time' = {value!r} is missing or not an ISO-8601 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise MalformedEventError(f"the event's 'time' = {value!r} is not an ISO-8601 timestamp") from None
    if moment.tzinfo is None:
        raise MalformedEventError(
            f"the event's 'time' = {value!r} has no time zone (EventBridge sends UTC 'Z')"
        )
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not _EARLIEST <= utc <= _LATEST:
        raise MalformedEventError(
            f"the event's 'time' = {value!r} is out of range (EventBridge sends the current UTC time)"
        )
    return moment

"""From an EventBridge event to a decision: ignore it, or start the pipeline.

Two kinds of event start a run on the dataset's raw prefix (``s3://<raw bucket>/<data prefix>``,
which Preprocess reads whole, the newest objects included):

- an S3 "Object Created" event of a new object under the prefix;
- a CloudWatch "Alarm State Change" of one of the stage's monitoring alarms into ALARM, where the
  stage's monitoring reaction is ``retrain``. Such a run is rate-limited: it waits while a run the
  trigger started (for any reason) began less than the stage's minimum interval before the alarm.

Pure: no AWS calls. The decision to start carries everything ``StartPipelineExecution`` needs,
including the idempotency token, a SHA-256 over what identifies the event's cause: the pipeline,
bucket, key and the object's version id (its ETag when the bucket is unversioned or the version is
S3's literal ``"null"``); or the pipeline, the alarm's name and the new state with CloudWatch's
timestamp of the transition. A redelivered event, or the same event retried by Lambda, yields the
same token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.data_classes.s3_event import S3EventBridgeNotificationEvent

from pipeline_trigger.settings import Settings
from rookery_contracts import raw_objects
from rookery_contracts.pipeline import ALARM_EVENT_SOURCE, ALARM_EVENT_TYPE, ALARM_STATE

EVENT_SOURCE = "aws.s3"
DETAIL_TYPE = "Object Created"
TOKEN_VERSION = "rookery-trigger/v1"
ALARM_TOKEN_VERSION = "rookery-trigger/alarm/v1"
# The states a CloudWatch alarm reports.
ALARM_STATES = ("OK", ALARM_STATE, "INSUFFICIENT_DATA")
# Marks the token in the execution description, where the duplicate check finds it again.
TOKEN_LABEL = "trigger-token"
# Executions started for an event are created after the event's time; allow for clock skew.
CLOCK_SKEW = timedelta(minutes=5)
# Event times whose duplicate-check window (CLOCK_SKEW either side, in UTC) is representable.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + CLOCK_SKEW
_LATEST = datetime.max.replace(tzinfo=UTC) - CLOCK_SKEW
_DESCRIPTION_MAX = 3072  # StartPipelineExecution's PipelineExecutionDescription limit


class MalformedEventError(ValueError):
    """The event is not a usable S3 "Object Created" or CloudWatch "Alarm State Change" EventBridge
    event; the message says what is wrong."""


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
class AlarmTransition:
    """A monitoring alarm's change of state, as CloudWatch reports it to EventBridge."""

    alarm_name: str
    state: str
    previous_state: str
    state_time: str  # CloudWatch's timestamp of this transition: with the name, it identifies it
    event_time: datetime


Subject = CreatedObject | AlarmTransition


@dataclass(frozen=True)
class Ignore:
    reason: str


@dataclass(frozen=True)
class RateLimit:
    """A run the trigger started after ``since`` (the alarm's time less ``interval``) holds this one back."""

    since: datetime
    interval: timedelta


@dataclass(frozen=True)
class Start:
    pipeline_name: str
    parameters: tuple[tuple[str, str], ...]
    input_uri: str
    client_request_token: str
    description: str
    created_after: datetime  # executions for this token cannot be older (the duplicate check's window)
    cause: str  # what starts the run, e.g. "new object s3://..." or "alarm ... entered ALARM ..."
    rate_limit: RateLimit | None = None

    @property
    def listed_after(self) -> datetime:
        """The oldest creation time the duplicate check and the rate limit need to see."""
        return min(self.created_after, self.rate_limit.since) if self.rate_limit else self.created_after


@dataclass(frozen=True)
class RecentRun:
    """A run the trigger started inside a rate limit's window (``start_time`` None: not reported)."""

    execution_arn: str
    start_time: datetime | None


def parse_event(event: object) -> Subject:
    """Read either kind of event the function's rules send; raise ``MalformedEventError`` otherwise."""
    if not isinstance(event, Mapping):
        raise MalformedEventError(f"expected an EventBridge event object, got {type(event).__name__}")
    kind = (event.get("source"), event.get("detail-type"))
    if kind == (ALARM_EVENT_SOURCE, ALARM_EVENT_TYPE):
        return parse_alarm_state_change(event)
    if kind == (EVENT_SOURCE, DETAIL_TYPE):
        return parse_object_created(event)
    raise MalformedEventError(
        f"expected an S3 {DETAIL_TYPE!r} event (source {EVENT_SOURCE!r}) or a {ALARM_EVENT_TYPE!r} event "
        f"(source {ALARM_EVENT_SOURCE!r}), got source {kind[0]!r} and detail-type {kind[1]!r}; the "
        "function's EventBridge rules must match only those"
    )


def parse_alarm_state_change(event: object) -> AlarmTransition:
    """Read a CloudWatch "Alarm State Change" event; raise ``MalformedEventError`` naming the bad field."""
    event, detail = _envelope(event, ALARM_EVENT_SOURCE, ALARM_EVENT_TYPE)
    name = detail.get("alarmName")
    if not isinstance(name, str) or not name:
        raise MalformedEventError("detail.alarmName is missing or not a non-empty string")
    state, state_time = _alarm_state(detail, "state")
    if not state_time:
        raise MalformedEventError(
            "detail.state.timestamp is missing or empty, so a redelivery could not be recognised"
        )
    previous, _ = _alarm_state(detail, "previousState")
    return AlarmTransition(
        alarm_name=name,
        state=state,
        previous_state=previous,
        state_time=state_time,
        event_time=_event_time(event.get("time")),
    )


def parse_object_created(event: object) -> CreatedObject:
    """Read an S3 EventBridge notification; raise ``MalformedEventError`` naming the bad field."""
    event, detail = _envelope(
        event,
        EVENT_SOURCE,
        DETAIL_TYPE,
        "; the EventBridge rule must match only S3 'Object Created' events of the raw bucket",
    )
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


def request_token(pipeline_name: str, subject: Subject) -> str:
    """Deterministic ``ClientRequestToken`` (64 hex characters; the API takes 32..128)."""
    if isinstance(subject, AlarmTransition):
        parts: tuple[str, ...] = (
            ALARM_TOKEN_VERSION,
            pipeline_name,
            subject.alarm_name,
            subject.state,
            subject.state_time,
        )
    else:
        parts = (TOKEN_VERSION, pipeline_name, subject.bucket, subject.key, subject.revision)
    return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()


def dataset_uri(bucket: str, settings: Settings) -> str:
    """The input of every run the trigger starts: the dataset's whole prefix of the raw bucket."""
    return f"s3://{bucket}/{settings.data_prefix}"


def plan(subject: Subject, settings: Settings) -> Ignore | Start:
    """Decide about a new object (:func:`plan_object`) or an alarm's transition (:func:`plan_retraining`)."""
    if isinstance(subject, AlarmTransition):
        return plan_retraining(subject, settings)
    return plan_object(subject, settings)


def plan_retraining(alarm: AlarmTransition, settings: Settings) -> Ignore | Start:
    """Start a rate-limited run when one of the stage's monitoring alarms enters ALARM; ignore the rest."""
    name = alarm.alarm_name
    retraining = settings.retraining
    if retraining is None:
        return Ignore(f"alarm {name}: this stage's monitoring alarms only notify (reaction 'notify')")
    if name not in retraining.alarm_names:
        return Ignore(
            f"alarm {name} is not one of the stage's monitoring alarms {sorted(retraining.alarm_names)}"
        )
    if alarm.state != ALARM_STATE or alarm.previous_state == ALARM_STATE:
        return Ignore(
            f"alarm {name} went from {alarm.previous_state} to {alarm.state}: only a change into "
            f"{ALARM_STATE} retrains"
        )
    return _start(
        settings,
        dataset_uri(retraining.raw_bucket, settings),
        request_token(settings.pipeline_name, alarm),
        f"alarm {name} entered {ALARM_STATE} (from {alarm.previous_state}) at {alarm.state_time}",
        alarm.event_time,
        rate_limit=RateLimit(
            since=_earlier(alarm.event_time, retraining.min_interval), interval=retraining.min_interval
        ),
    )


def plan_object(obj: CreatedObject, settings: Settings) -> Ignore | Start:
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
    return _start(
        settings,
        dataset_uri(obj.bucket, settings),
        request_token(settings.pipeline_name, obj),
        f"new object {obj.uri} ({obj.revision})",
        obj.event_time,
    )


def _start(
    settings: Settings,
    input_uri: str,
    token: str,
    cause: str,
    event_time: datetime,
    *,
    rate_limit: RateLimit | None = None,
) -> Start:
    """A run of the pipeline on ``input_uri`` for ``cause``, found again by ``token`` after ``event_time``."""
    return Start(
        pipeline_name=settings.pipeline_name,
        parameters=((settings.input_parameter, input_uri),),
        input_uri=input_uri,
        client_request_token=token,
        description=_description(input_uri, cause, token),
        created_after=event_time - CLOCK_SKEW,
        cause=cause,
        rate_limit=rate_limit,
    )


def token_marker(token: str) -> str:
    return f"[{TOKEN_LABEL} {token}]"


def started_by_trigger(description: str) -> bool:
    """Whether an execution's description carries a trigger token (the function started it)."""
    return f"[{TOKEN_LABEL} " in description


def latest_trigger_run(summaries: Iterable[Mapping[str, Any]], since: datetime) -> RecentRun | None:
    """The newest run the trigger started after ``since``, from ``ListPipelineExecutions`` summaries.

    Neither the listing's order nor its ``CreatedAfter`` filter is relied on: every summary is
    compared by its ``StartTime`` (a naive time is UTC). A run started exactly ``since`` is outside the
    window. A trigger run without a start time counts as recent: starting another might be the storm
    the limit prevents.
    """
    newest: RecentRun | None = None
    for summary in summaries:
        if not started_by_trigger(str(summary.get("PipelineExecutionDescription") or "")):
            continue
        started = summary.get("StartTime")
        if not isinstance(started, datetime):
            return RecentRun(str(summary["PipelineExecutionArn"]), None)
        if started.tzinfo is None:
            started = started.replace(tzinfo=UTC)
        if started > since and (newest is None or newest.start_time is None or started > newest.start_time):
            newest = RecentRun(str(summary["PipelineExecutionArn"]), started)
    return newest


def rate_limited_reason(start: Start, recent: RecentRun) -> str:
    """Why ``start`` waits for ``recent``, and from when an alarm may start a run again."""
    assert start.rate_limit is not None, "only a rate-limited start waits"
    hours = int(start.rate_limit.interval.total_seconds() // 3600)
    if recent.start_time is None:
        when, until = "at an unreported time", ""
    else:
        when = f"at {recent.start_time.astimezone(UTC).isoformat()}"
        until = (
            f"; an alarm may start one after {(recent.start_time + start.rate_limit.interval).isoformat()}"
        )
    return (
        f"{start.cause}, but the run {recent.execution_arn} the trigger started {when} is less than "
        f"{hours} h old (monitoring.retrain_min_interval_hours){until}"
    )


def _description(input_uri: str, cause: str, token: str) -> str:
    marker = token_marker(token)
    text = f"Retrain on {input_uri}: {cause}"
    room = _DESCRIPTION_MAX - len(marker) - 1
    if len(text) > room:
        text = text[: room - 3] + "..."
    return f"{text} {marker}"


def _envelope(
    event: object, source: str, detail_type: str, hint: str = ""
) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The event and its ``detail`` when ``event`` is an EventBridge event of ``source`` and
    ``detail_type``; else ``MalformedEventError`` (``hint`` ends the message about the kind)."""
    if not isinstance(event, Mapping):
        raise MalformedEventError(f"expected an EventBridge event object, got {type(event).__name__}")
    got_source, got_type = event.get("source"), event.get("detail-type")
    if got_source != source or got_type != detail_type:
        raise MalformedEventError(
            f"expected source {source!r} and detail-type {detail_type!r}, got {got_source!r} and "
            f"{got_type!r}{hint}"
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError("the event has no 'detail' object")
    return event, detail


def _alarm_state(detail: Mapping[str, Any], field: str) -> tuple[str, str]:
    """An alarm event's ``state`` or ``previousState``: its value and CloudWatch's timestamp of it."""
    section = detail.get(field)
    if not isinstance(section, Mapping):
        raise MalformedEventError(f"detail.{field} is missing or not an object")
    value, timestamp = section.get("value"), section.get("timestamp")
    if value not in ALARM_STATES:
        raise MalformedEventError(
            f"detail.{field}.value = {value!r} is not an alarm state (one of {list(ALARM_STATES)})"
        )
    if timestamp is not None and not isinstance(timestamp, str):
        raise MalformedEventError(f"detail.{field}.timestamp = {timestamp!r} is not a string")
    return str(value), timestamp or ""


def _earlier(moment: datetime, delta: timedelta) -> datetime:
    """``moment - delta``, or the earliest representable UTC time when that lies before year 1."""
    try:
        return moment - delta
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


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

"""The trigger's pure part for monitoring alarms: reading "Alarm State Change" events, which transitions
retrain, the token of a transition, the rate limit's window and the retraining settings."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline_trigger.plan import (
    ALARM_STATES,
    AlarmTransition,
    CreatedObject,
    Ignore,
    MalformedEventError,
    RecentRun,
    Start,
    latest_trigger_run,
    parse_alarm_state_change,
    parse_event,
    plan,
    rate_limited_reason,
    request_token,
    token_marker,
)
from pipeline_trigger.settings import ConfigurationError, Retraining, Settings, load_settings
from rookery_contracts.pipeline import INPUT_DATA_PARAMETER

EventFactory = Callable[..., dict[str, Any]]
OURS = "rookery-dev-endpoint-data-quality-violations"
QUALITY = "rookery-dev-endpoint-model-quality-violations"
RAW = "rookery-dev-raw-123456789012-eu-west-1"
RETRAINING = Retraining(
    raw_bucket=RAW, alarm_names=frozenset({OURS, QUALITY}), min_interval=timedelta(hours=24)
)
SETTINGS = Settings("rookery-dev-pipeline", "penguins/", "errors/", retraining=RETRAINING)
NOTIFY = Settings("rookery-dev-pipeline", "penguins/", "errors/")
ENV = {
    "PIPELINE_NAME": "rookery-dev-pipeline",
    "DATA_PREFIX": "penguins/",
    "ERROR_PREFIX": "errors/",
    "RAW_BUCKET": RAW,
    "RETRAIN_ALARM_NAMES": json.dumps([OURS, QUALITY]),
    "RETRAIN_MIN_INTERVAL_HOURS": "24",
}
ALARM_TIME = datetime(2024, 5, 1, 13, 5, 12, tzinfo=UTC)


def start_for(event: dict[str, Any], settings: Settings = SETTINGS) -> Start:
    decision = plan(parse_event(event), settings)
    assert isinstance(decision, Start), decision
    return decision


def test_an_alarm_state_change_is_read(alarm_event: EventFactory) -> None:
    alarm = parse_event(alarm_event())
    assert alarm == AlarmTransition(
        alarm_name=OURS,
        state="ALARM",
        previous_state="OK",
        state_time="2024-05-01T13:05:12.345+0000",
        event_time=ALARM_TIME,
    )


def test_an_object_created_event_is_still_read_as_an_object(object_created_event: EventFactory) -> None:
    assert isinstance(parse_event(object_created_event()), CreatedObject)


@pytest.mark.parametrize("previous", ["OK", "INSUFFICIENT_DATA"])
def test_our_alarm_entering_alarm_retrains_on_the_dataset_prefix_with_a_rate_limit(
    alarm_event: EventFactory, previous: str
) -> None:
    start = start_for(alarm_event(previous=previous))
    input_uri = f"s3://{RAW}/penguins/"
    assert start.pipeline_name == "rookery-dev-pipeline"
    # The input only: registration keeps the pipeline's default status (PendingManualApproval where
    # the stage requires approval), so the retrained version still waits for a person.
    assert start.parameters == ((INPUT_DATA_PARAMETER, input_uri),)
    assert start.input_uri == input_uri
    assert start.cause == f"alarm {OURS} entered ALARM (from {previous}) at 2024-05-01T13:05:12.345+0000"
    assert start.description == (
        f"Retrain on {input_uri}: {start.cause} {token_marker(start.client_request_token)}"
    )
    assert start.created_after == ALARM_TIME - timedelta(minutes=5)
    assert start.rate_limit is not None
    assert (start.rate_limit.since, start.rate_limit.interval) == (
        ALARM_TIME - timedelta(hours=24),
        timedelta(hours=24),
    )
    assert start.listed_after == start.rate_limit.since


def test_an_alarm_run_reads_the_same_input_as_an_object_run(
    alarm_event: EventFactory, object_created_event: EventFactory
) -> None:
    from_object = start_for(object_created_event(bucket=RAW))
    assert start_for(alarm_event()).parameters == from_object.parameters
    assert from_object.rate_limit is None and from_object.listed_after == from_object.created_after


IGNORED = {
    "back to OK": (
        {"state": "OK", "previous": "ALARM"},
        f"alarm {OURS} went from ALARM to OK: only a change",
    ),
    "to insufficient data": (
        {"state": "INSUFFICIENT_DATA", "previous": "ALARM"},
        "went from ALARM to INSUFFICIENT_DATA",
    ),
    "OK to insufficient data": ({"state": "INSUFFICIENT_DATA"}, "went from OK to INSUFFICIENT_DATA"),
    "ALARM to ALARM": ({"previous": "ALARM"}, "went from ALARM to ALARM: only a change into ALARM retrains"),
    "not ours": (
        {"name": "rookery-dev-endpoint-5xx-rate"},
        "alarm rookery-dev-endpoint-5xx-rate is not one of the stage's monitoring alarms "
        f"{sorted([OURS, QUALITY])}",
    ),
    "another stage's": ({"name": "rookery-prod-endpoint-data-quality-violations"}, "is not one of"),
}


@pytest.mark.parametrize(("change", "reason"), IGNORED.values(), ids=IGNORED.keys())
def test_transitions_that_do_not_retrain_are_ignored_with_a_reason(
    alarm_event: EventFactory, change: dict[str, str], reason: str
) -> None:
    decision = plan(parse_event(alarm_event(**change)), SETTINGS)
    assert isinstance(decision, Ignore) and reason in decision.reason


def test_a_notify_stage_ignores_even_its_own_alarms(alarm_event: EventFactory) -> None:
    decision = plan(parse_event(alarm_event()), NOTIFY)
    assert decision == Ignore(f"alarm {OURS}: this stage's monitoring alarms only notify (reaction 'notify')")


def test_a_redelivered_transition_has_the_same_token(alarm_event: EventFactory) -> None:
    first = start_for(alarm_event())
    again = start_for(alarm_event(time="2024-05-01T15:00:00Z", event_id="another-delivery"))
    assert first.client_request_token == again.client_request_token
    assert re.fullmatch(r"[0-9a-f]{64}", first.client_request_token)


@pytest.mark.parametrize(
    "change",
    [{"state_time": "2024-05-02T09:05:12.345+0000"}, {"name": QUALITY}],
    ids=["a later transition", "the other alarm"],
)
def test_another_transition_has_another_token(alarm_event: EventFactory, change: dict[str, str]) -> None:
    assert (
        start_for(alarm_event()).client_request_token != start_for(alarm_event(**change)).client_request_token
    )


def test_the_state_timestamp_not_the_previous_state_identifies_a_transition(
    alarm_event: EventFactory,
) -> None:
    first, other = start_for(alarm_event()), start_for(alarm_event(previous="INSUFFICIENT_DATA"))
    assert first.client_request_token == other.client_request_token


def test_alarm_and_object_tokens_never_meet(
    alarm_event: EventFactory, object_created_event: EventFactory
) -> None:
    alarm = parse_alarm_state_change(alarm_event())
    obj = parse_event(object_created_event())
    assert request_token("p", alarm) != request_token("p", obj)
    assert request_token("p", alarm) != request_token("q", alarm)


def _without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    node = event
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return event


def _with(event: dict[str, Any], value: object, *path: str) -> dict[str, Any]:
    node = event
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return event


MALFORMED: dict[str, tuple[Callable[[EventFactory], object], str]] = {
    "unknown kind": (
        lambda make: {**make(), "source": "aws.sagemaker"},
        "expected an S3 'Object Created' event (source 'aws.s3') or a 'CloudWatch Alarm State Change' "
        "event (source 'aws.cloudwatch'), got source 'aws.sagemaker' and detail-type "
        "'CloudWatch Alarm State Change'",
    ),
    "not an object": (lambda make: "ALARM", "expected an EventBridge event object, got str"),
    "no detail": (lambda make: _without(make(), "detail"), "the event has no 'detail' object"),
    "no alarm name": (lambda make: _without(make(), "detail", "alarmName"), "detail.alarmName is missing"),
    "empty alarm name": (lambda make: make(""), "detail.alarmName is missing or not a non-empty string"),
    "no state": (
        lambda make: _without(make(), "detail", "state"),
        "detail.state is missing or not an object",
    ),
    "state not an object": (
        lambda make: _with(make(), "ALARM", "detail", "state"),
        "detail.state is missing or not an object",
    ),
    "unknown state": (
        lambda make: make(state="FIRING"),
        "detail.state.value = 'FIRING' is not an alarm state (one of ['OK', 'ALARM', 'INSUFFICIENT_DATA'])",
    ),
    "no previous state": (
        lambda make: _without(make(), "detail", "previousState"),
        "detail.previousState is missing or not an object",
    ),
    "no state timestamp": (
        lambda make: _without(make(), "detail", "state", "timestamp"),
        "detail.state.timestamp is missing or empty, so a redelivery could not be recognised",
    ),
    "timestamp not a string": (
        lambda make: _with(make(), 1714568712, "detail", "state", "timestamp"),
        "detail.state.timestamp = 1714568712 is not a string",
    ),
    "no time": (lambda make: _without(make(), "time"), "the event's 'time' = None is missing"),
    "naive time": (lambda make: make(time="2024-05-01T13:05:12"), "has no time zone"),
}


@pytest.mark.parametrize(("build", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_alarm_events_raise_a_clear_error(
    alarm_event: EventFactory, build: Callable[[EventFactory], object], message: str
) -> None:
    with pytest.raises(MalformedEventError, match=re.escape(message)):
        parse_event(build(alarm_event))


FACTORY_FIXTURE = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, database=None
)
names = st.sampled_from([OURS, QUALITY, "rookery-dev-endpoint-5xx-rate", "other"]) | st.text(max_size=20)
junk = st.none() | st.integers() | st.text(max_size=8) | st.lists(st.integers(), max_size=2)
states = st.sampled_from(ALARM_STATES) | junk
timestamps = st.sampled_from(["2024-05-01T13:05:12.345+0000", "2024-05-02T00:00:00.000+0000"]) | junk
sections = st.fixed_dictionaries({"value": states, "timestamp": timestamps}) | junk
details = st.fixed_dictionaries(
    {}, optional={"alarmName": names | junk, "state": sections, "previousState": sections}
)
times = st.sampled_from(["2024-05-01T13:05:12Z", "0001-01-01T00:10:00Z", "2024-05-01T13:05:12"]) | junk


def _detail(state: str, previous: str, name: str = OURS) -> dict[str, Any]:
    return {
        "alarmName": name,
        "state": {"value": state, "timestamp": "2024-05-01T13:05:12.345+0000"},
        "previousState": {"value": previous},
    }


@settings(FACTORY_FIXTURE, max_examples=400)
@example(detail=_detail("ALARM", "OK"), time="2024-05-01T13:05:12Z")
@example(detail=_detail("ALARM", "INSUFFICIENT_DATA", QUALITY), time="0001-01-01T00:10:00Z")
@example(detail=_detail("OK", "ALARM"), time="2024-05-01T13:05:12Z")
@example(detail=_detail("ALARM", "OK", "other"), time="2024-05-01T13:05:12Z")
@given(detail=details | junk, time=times)
def test_property_any_alarm_event_is_refused_clearly_ignored_or_retrains_exactly_when_it_should(
    alarm_event: EventFactory, detail: object, time: object
) -> None:
    event = {**alarm_event(), "detail": detail, "time": time}
    try:
        alarm = parse_event(event)
    except MalformedEventError as error:
        assert str(error)
        return
    assert isinstance(alarm, AlarmTransition)
    decision = plan(alarm, SETTINGS)
    retrains = (
        alarm.alarm_name in {OURS, QUALITY} and alarm.state == "ALARM" and alarm.previous_state != "ALARM"
    )
    assert isinstance(decision, Start) == retrains
    if isinstance(decision, Start):
        assert decision.rate_limit is not None and decision.rate_limit.since <= alarm.event_time
        assert decision.listed_after <= decision.created_after
        # The token names the transition, not the delivery.
        redelivered = plan(parse_event({**event, "time": "2030-01-01T00:00:00Z", "id": "x"}), SETTINGS)
        assert isinstance(redelivered, Start)
        assert redelivered.client_request_token == decision.client_request_token
    else:
        assert isinstance(decision, Ignore) and alarm.alarm_name in decision.reason


# --- the rate limit's window ------------------------------------------------------------------------

SINCE = ALARM_TIME - timedelta(hours=24)


def summary(arn: str, start: datetime | None, description: str | None = None) -> dict[str, Any]:
    """A ``ListPipelineExecutions`` summary; by default one the trigger started (a token in it)."""
    item: dict[str, Any] = {
        "PipelineExecutionArn": arn,
        "PipelineExecutionDescription": (
            description if description is not None else f"Retrain on ... {token_marker('a' * 64)}"
        ),
    }
    if start is not None:
        item["StartTime"] = start
    return item


def test_a_run_started_exactly_the_interval_before_the_alarm_does_not_hold_it_back() -> None:
    assert latest_trigger_run([summary("at-the-boundary", SINCE)], SINCE) is None
    inside = SINCE + timedelta(seconds=1)
    assert latest_trigger_run([summary("just-inside", inside)], SINCE) == RecentRun("just-inside", inside)


def test_runs_a_person_started_do_not_count() -> None:
    manual = summary("manual", ALARM_TIME - timedelta(hours=1), description="started from the CLI")
    no_description = {"PipelineExecutionArn": "bare", "StartTime": ALARM_TIME}
    assert latest_trigger_run([manual, no_description], SINCE) is None


def test_the_newest_run_is_found_whatever_the_listing_order() -> None:
    runs = [
        summary("old", SINCE - timedelta(days=3)),
        summary("newest", ALARM_TIME - timedelta(minutes=30)),
        summary("older", ALARM_TIME - timedelta(hours=6)),
    ]
    for order in (runs, runs[::-1], [runs[2], runs[1], runs[0]]):
        assert latest_trigger_run(order, SINCE) == RecentRun("newest", ALARM_TIME - timedelta(minutes=30))


def test_a_naive_start_time_is_utc_and_an_unreported_one_counts_as_recent() -> None:
    naive = (SINCE + timedelta(minutes=1)).replace(tzinfo=None)
    assert latest_trigger_run([summary("naive", naive)], SINCE) == RecentRun(
        "naive", naive.replace(tzinfo=UTC)
    )
    assert latest_trigger_run([summary("unknown", None)], SINCE) == RecentRun("unknown", None)


def test_the_rate_limited_reason_names_the_run_and_when_retraining_may_start_again(
    alarm_event: EventFactory,
) -> None:
    start = start_for(alarm_event())
    recent = RecentRun("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/x", ALARM_TIME)
    assert rate_limited_reason(start, recent) == (
        f"{start.cause}, but the run {recent.execution_arn} the trigger started at "
        "2024-05-01T13:05:12+00:00 is less than 24 h old (monitoring.retrain_min_interval_hours); an alarm "
        "may start one after 2024-05-02T13:05:12+00:00"
    )


# --- settings ---------------------------------------------------------------------------------------


def test_retraining_settings_are_read_from_the_environment() -> None:
    assert load_settings(ENV).retraining == RETRAINING
    notify = {k: v for k, v in ENV.items() if not k.startswith(("RAW_", "RETRAIN_"))}
    assert load_settings(notify).retraining is None


BAD_RETRAINING = {
    "only the alarms": (
        {"RAW_BUCKET": "", "RETRAIN_MIN_INTERVAL_HOURS": ""},
        "environment variables RETRAIN_ALARM_NAMES are set but RAW_BUCKET, RETRAIN_MIN_INTERVAL_HOURS not",
    ),
    "bucket": ({"RAW_BUCKET": "Raw_Bucket"}, "RAW_BUCKET = 'Raw_Bucket' is not an S3 bucket name"),
    "alarms not JSON": (
        {"RETRAIN_ALARM_NAMES": OURS},
        f"RETRAIN_ALARM_NAMES = '{OURS}' is not a JSON array of alarm names",
    ),
    "no alarms": ({"RETRAIN_ALARM_NAMES": "[]"}, "RETRAIN_ALARM_NAMES = '[]' is not a JSON array"),
    "empty alarm name": ({"RETRAIN_ALARM_NAMES": '[""]'}, "is not a JSON array of alarm names (1-255"),
    "zero hours": ({"RETRAIN_MIN_INTERVAL_HOURS": "0"}, "RETRAIN_MIN_INTERVAL_HOURS = '0' is not a whole"),
    "fractional hours": ({"RETRAIN_MIN_INTERVAL_HOURS": "1.5"}, "= '1.5' is not a whole number of hours"),
}


@pytest.mark.parametrize(("change", "message"), BAD_RETRAINING.values(), ids=BAD_RETRAINING.keys())
def test_bad_retraining_settings_are_named_with_the_fix(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_settings({**ENV, **change})


def test_the_alarm_reader_refuses_another_kind_of_event(object_created_event: EventFactory) -> None:
    with pytest.raises(
        MalformedEventError,
        match=re.escape(
            "expected source 'aws.cloudwatch' and detail-type 'CloudWatch Alarm State Change', got 'aws.s3' "
            "and 'Object Created'"
        ),
    ):
        parse_alarm_state_change(object_created_event())

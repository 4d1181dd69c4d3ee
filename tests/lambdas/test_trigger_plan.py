"""The trigger's pure part: reading S3 EventBridge events, the idempotency token, ignore rules, settings."""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline_trigger.plan import (
    Ignore,
    MalformedEventError,
    Start,
    parse_object_created,
    plan,
    request_token,
    token_marker,
)
from pipeline_trigger.settings import ConfigurationError, Settings, load_settings
from rookery_image.contract import UserError
from rookery_image.records import RawReader

EventFactory = Callable[..., dict[str, Any]]
SETTINGS = Settings(pipeline_name="rookery-dev-pipeline", data_prefix="penguins/", error_prefix="errors/")
ENV = {"PIPELINE_NAME": "rookery-dev-pipeline", "DATA_PREFIX": "penguins/", "ERROR_PREFIX": "errors/"}


def start_for(event: dict[str, Any], settings: Settings = SETTINGS) -> Start:
    decision = plan(parse_object_created(event), settings)
    assert isinstance(decision, Start), decision
    return decision


def test_an_object_created_event_is_read(object_created_event: EventFactory) -> None:
    obj = parse_object_created(object_created_event())
    assert obj.bucket == "rookery-dev-raw-123456789012"
    assert obj.key.startswith("penguins/ingest_date=2024-05-01/")
    assert (obj.version_id, obj.etag, obj.size) == (
        "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        "b1946ac92492d2347c6235b4d2611184",
        5120,
    )
    assert obj.event_time == datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC)


def test_keys_are_url_decoded_as_powertools_reads_them(object_created_event: EventFactory) -> None:
    obj = parse_object_created(object_created_event("penguins/ingest_date%3D2024-05-01/part+1.json"))
    assert obj.key == "penguins/ingest_date=2024-05-01/part 1.json"


def test_a_new_object_under_the_data_prefix_starts_a_run_on_the_whole_dataset(
    object_created_event: EventFactory,
) -> None:
    event = object_created_event()
    start = start_for(event)
    assert start.pipeline_name == "rookery-dev-pipeline"
    assert start.parameters == (("InputDataUri", "s3://rookery-dev-raw-123456789012/penguins/"),)
    key = event["detail"]["object"]["key"]
    assert f"new object s3://rookery-dev-raw-123456789012/{key}" in start.description
    assert start.description.endswith(token_marker(start.client_request_token))
    assert start.created_after == datetime(2024, 5, 1, 11, 55, 5, tzinfo=UTC)


def test_the_input_parameter_name_comes_from_settings(object_created_event: EventFactory) -> None:
    custom = Settings("p", "penguins/", "errors/", input_parameter="RawData")
    assert start_for(object_created_event(), custom).parameters[0][0] == "RawData"


def test_the_token_is_deterministic_and_fits_the_api(object_created_event: EventFactory) -> None:
    first, again = (
        start_for(object_created_event()),
        start_for(object_created_event(time="2024-05-02T00:00:00Z")),
    )
    assert first.client_request_token == again.client_request_token, "a redelivery yields the same token"
    assert re.fullmatch(r"[0-9a-f]{64}", first.client_request_token)


@pytest.mark.parametrize(
    "change",
    [
        {"version_id": "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH"},
        {"key": "penguins/ingest_date=2024-05-01/another-object.json"},
        {"bucket": "rookery-prod-raw-123456789012"},
    ],
    ids=["new version", "other key", "other bucket"],
)
def test_a_different_write_gets_a_different_token(
    object_created_event: EventFactory, change: dict[str, Any]
) -> None:
    assert (
        start_for(object_created_event()).client_request_token
        != start_for(object_created_event(**change)).client_request_token
    )


def test_the_token_differs_per_pipeline(object_created_event: EventFactory) -> None:
    obj = parse_object_created(object_created_event())
    assert request_token("pipeline-a", obj) != request_token("pipeline-b", obj)


@pytest.mark.parametrize("version_id", [None, "null"])
def test_unversioned_writes_are_told_apart_by_etag(
    object_created_event: EventFactory, version_id: str | None
) -> None:
    obj = parse_object_created(object_created_event(version_id=version_id))
    assert obj.version_id is None and obj.revision == "etag b1946ac92492d2347c6235b4d2611184"
    other = parse_object_created(
        object_created_event(version_id=version_id, etag="0cc175b9c0f1b6a831c399e269772661")
    )
    assert request_token("p", obj) != request_token("p", other)


IGNORED = {
    "error prefix": ("errors/processing-failed/ingest_date=2024-05-01/x.json", "is Firehose error output"),
    "outside data prefix": ("athena-results/q.csv", "is outside the dataset prefix 'penguins/'"),
    "similar prefix": ("penguins-old/x.json", "is outside the dataset prefix 'penguins/'"),
    "folder marker": ("penguins/ingest_date=2024-05-01/", "is a folder marker"),
    "errors folder below the prefix": (
        "penguins/errors/ingest_date=2024-05-01/x.json",
        "is Firehose error output (failed records), which Preprocess does not read",
    ),
    "hidden file": ("penguins/ingest_date=2024-05-01/.x.json.swp", "is a hidden file or folder"),
    "hidden folder": ("penguins/.staging/x.json", "is a hidden file or folder"),
}


@pytest.mark.parametrize(("key", "reason"), IGNORED.values(), ids=IGNORED.keys())
def test_objects_that_are_not_new_training_data_are_ignored_with_a_reason(
    object_created_event: EventFactory, key: str, reason: str
) -> None:
    decision = plan(parse_object_created(object_created_event(key)), SETTINGS)
    assert isinstance(decision, Ignore) and reason in decision.reason


def test_an_error_prefix_inside_the_data_prefix_is_still_ignored(object_created_event: EventFactory) -> None:
    nested = Settings("p", data_prefix="penguins/", error_prefix="penguins/errors/")
    decision = plan(parse_object_created(object_created_event("penguins/errors/x.json")), nested)
    assert isinstance(decision, Ignore) and "Firehose error output" in decision.reason


def test_an_empty_object_is_ignored(object_created_event: EventFactory) -> None:
    decision = plan(parse_object_created(object_created_event(size=0)), SETTINGS)
    assert isinstance(decision, Ignore) and "is empty" in decision.reason


def _without(event: dict[str, Any], *path: str) -> dict[str, Any]:
    node = event
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return event


MALFORMED: dict[str, tuple[Callable[[EventFactory], object], str]] = {
    "not an object": (lambda make: ["penguins/x.json"], "expected an EventBridge event object, got list"),
    "other detail-type": (
        lambda make: {**make(), "detail-type": "Object Deleted"},
        "expected source 'aws.s3' and detail-type 'Object Created', got 'aws.s3' and 'Object Deleted'",
    ),
    "other source": (lambda make: {**make(), "source": "aws.sagemaker"}, "got 'aws.sagemaker'"),
    "no detail": (lambda make: _without(make(), "detail"), "the event has no 'detail' object"),
    "no bucket": (lambda make: _without(make(), "detail", "bucket"), "detail.bucket.name is missing"),
    "no key": (lambda make: _without(make(), "detail", "object", "key"), "detail.object.key is missing"),
    "empty key": (lambda make: make(""), "detail.object.key is missing or not a non-empty string"),
    "no revision": (
        lambda make: make(version_id=None, etag=None),
        "neither 'version-id' nor 'etag', so a redelivery could not be recognised",
    ),
    "bad size": (lambda make: make(size=-1), "detail.object.size = -1 is not a byte count"),
    "no time": (lambda make: _without(make(), "time"), "the event's 'time' = None is missing"),
    "bad time": (lambda make: make(time="yesterday"), "'yesterday' is not an ISO-8601 timestamp"),
    "naive time": (lambda make: make(time="2024-05-01T12:00:05"), "has no time zone"),
    "first moment": (lambda make: make(time="0001-01-01T00:00:00Z"), "is out of range"),
    "last moment": (lambda make: make(time="9999-12-31T23:59:59.999999Z"), "is out of range"),
    "before year 1 in UTC": (lambda make: make(time="0001-01-01T00:00:00+01:00"), "is out of range"),
    "after 9999 in UTC": (lambda make: make(time="9999-12-31T23:00:00-05:00"), "is out of range"),
}


@pytest.mark.parametrize(("build", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_events_raise_a_clear_error(
    object_created_event: EventFactory, build: Callable[[EventFactory], object], message: str
) -> None:
    with pytest.raises(MalformedEventError, match=re.escape(message)):
        parse_object_created(build(object_created_event))


def test_settings_defaults() -> None:
    settings = load_settings(ENV)
    assert settings == Settings("rookery-dev-pipeline", "penguins/", "errors/")
    assert (settings.input_parameter, settings.service, settings.metrics_namespace) == (
        "InputDataUri",
        "pipeline_trigger",
        "Rookery",
    )


@pytest.mark.parametrize("name", ["PIPELINE_NAME", "DATA_PREFIX", "ERROR_PREFIX"])
@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_missing_variable_is_named(name: str, value: str | None) -> None:
    env = {k: v for k, v in ENV.items() if k != name}
    if value is not None:
        env[name] = value
    with pytest.raises(
        ConfigurationError, match=f"environment variable {name} is not set: the construct must"
    ):
        load_settings(env)


BAD_SETTINGS = {
    "prefix without slash": (
        {"DATA_PREFIX": "penguins"},
        "DATA_PREFIX = 'penguins' must be a key prefix ending in '/'",
    ),
    "absolute prefix": ({"ERROR_PREFIX": "/errors/"}, "ERROR_PREFIX = '/errors/' must be a key prefix"),
    "data under errors": (
        {"DATA_PREFIX": "errors/penguins/"},
        "DATA_PREFIX = 'errors/penguins/' lies under ERROR_PREFIX = 'errors/'",
    ),
    "pipeline name": (
        {"PIPELINE_NAME": "my pipeline!"},
        "PIPELINE_NAME = 'my pipeline!' is not a SageMaker pipeline",
    ),
    "parameter name": (
        {"INPUT_PARAMETER_NAME": "input uri"},
        "INPUT_PARAMETER_NAME = 'input uri' is not a pipeline",
    ),
}


@pytest.mark.parametrize(("change", "message"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_bad_settings_are_named_with_the_fix(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_settings({**ENV, **change})


def test_a_pipeline_arn_is_accepted() -> None:
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/rookery-dev-pipeline"
    assert load_settings({**ENV, "PIPELINE_NAME": arn}).pipeline_name == arn


def test_the_description_stays_within_the_api_limit_and_keeps_the_token(
    object_created_event: EventFactory,
) -> None:
    start = start_for(object_created_event("penguins/" + "k" * 3000))
    assert len(start.description) == 3072
    assert "..." in start.description
    assert start.description.endswith(token_marker(start.client_request_token))


# Key segments that matter to the rule, and ordinary ones.
segments = st.sampled_from(
    ["errors", ".hidden", "ingest_date=2024-05-01", "part-1.json", "error", "errors.json", "_tmp", "x.gz"]
)
relative_keys = st.lists(segments, min_size=1, max_size=4).map("/".join)


# The fixture is a plain event factory: nothing in it is per-example state.
FACTORY_FIXTURE = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None, database=None
)


@settings(FACTORY_FIXTURE, max_examples=60)
@given(keys=st.lists(relative_keys, min_size=1, max_size=6, unique=True))
def test_property_a_key_starts_the_pipeline_exactly_when_preprocess_reads_it(
    object_created_event: EventFactory, keys: list[str]
) -> None:
    started = set()
    for key in keys:
        event = object_created_event(quote_plus(f"penguins/{key}", safe="/"))
        if isinstance(plan(parse_object_created(event), SETTINGS), Start):
            started.add(key)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        written = []
        for key in keys:
            path = root / key
            if any(p.is_file() for p in [path, *path.parents]) or path.is_dir():
                continue  # a key that is also another key's folder cannot exist on a file system
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text('{"species": "Adelie"}\n', encoding="utf-8")
            written.append(key)
        reader = RawReader(root)
        with contextlib.suppress(UserError):  # raised when nothing was readable
            for _ in reader:
                pass
    assert set(reader.files) == started & set(written)


iso_offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: (
        "Z"
        if minutes == 0
        else f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    )
)
event_times = st.one_of(
    st.builds(lambda moment, offset: moment.isoformat() + offset, st.datetimes(), iso_offsets),
    st.datetimes().map(datetime.isoformat),
    st.text(max_size=30),
    st.none() | st.integers() | st.floats(),
)


@settings(FACTORY_FIXTURE, max_examples=300)
@example(time="0001-01-01T00:04:59+00:00")
@given(time=event_times)
def test_property_any_event_time_is_read_or_refused_as_malformed(
    object_created_event: EventFactory, time: object
) -> None:
    event = object_created_event()
    event["time"] = time
    try:
        obj = parse_object_created(event)
    except MalformedEventError:
        return
    decision = plan(obj, SETTINGS)
    assert isinstance(decision, Start) and decision.created_after.tzinfo is not None

"""The trigger handler against SageMaker and S3/EventBridge emulated by moto: one execution per new object,
and per monitoring alarm entering ALARM within the rate limit; the listing's pages and order with Stubber."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from pipeline_trigger.executions import RateLimited, Started, start_once
from pipeline_trigger.plan import MalformedEventError, Start, parse_event, plan, token_marker
from pipeline_trigger.settings import ConfigurationError, load_settings

# Fixtures from conftest.py: a fake Lambda context, a cold-start importer of handlers, S3 events.
LoadHandler = Callable[[str, Mapping[str, str]], ModuleType]
EventFactory = Callable[..., dict[str, Any]]
FakeLambdaContext = object

REGION = "eu-west-1"
PIPELINE = "rookery-dev-pipeline"
ENV = {"PIPELINE_NAME": PIPELINE, "DATA_PREFIX": "penguins/", "ERROR_PREFIX": "errors/"}
PARAMETERS = [
    {"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://placeholder/"},
    {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
]
DEFINITION = {"Version": "2020-12-01", "Parameters": PARAMETERS, "Steps": []}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield


@pytest.fixture
def sagemaker(aws: None) -> Any:
    client = boto3.client("sagemaker", region_name=REGION)
    client.create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition=json.dumps(DEFINITION),
        RoleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/rookery-dev-sagemaker-execution",
    )
    return client


@pytest.fixture
def handler(sagemaker: Any, load_handler: LoadHandler) -> ModuleType:
    return load_handler("pipeline_trigger", ENV)


def executions(client: Any) -> list[dict[str, Any]]:
    return list(client.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"])


def test_a_new_object_starts_the_pipeline_on_the_dataset(
    handler: ModuleType, sagemaker: Any, object_created_event: EventFactory, lambda_context: FakeLambdaContext
) -> None:
    event = object_created_event()
    result = handler.lambda_handler(event, lambda_context)

    assert result["status"] == "started"
    assert result["input_data_uri"] == "s3://rookery-dev-raw-123456789012/penguins/"
    [execution] = executions(sagemaker)
    assert execution["PipelineExecutionArn"] == result["pipeline_execution_arn"]
    parameters = sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=result["pipeline_execution_arn"]
    )
    assert parameters["PipelineParameters"] == [
        {"Name": "InputDataUri", "Value": "s3://rookery-dev-raw-123456789012/penguins/"}
    ]
    description = sagemaker.describe_pipeline_execution(
        PipelineExecutionArn=result["pipeline_execution_arn"]
    )["PipelineExecutionDescription"]
    assert f"s3://rookery-dev-raw-123456789012/{event['detail']['object']['key']}" in description
    # The token travelled with the request (moto records it, though it does not deduplicate on it).
    stored = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].pipelines[PIPELINE].pipeline_executions
    assert stored[result["pipeline_execution_arn"]].client_request_token == result["client_request_token"]


def test_a_duplicate_event_starts_nothing_new(
    handler: ModuleType, sagemaker: Any, object_created_event: EventFactory, lambda_context: FakeLambdaContext
) -> None:
    first = handler.lambda_handler(object_created_event(), lambda_context)
    again = handler.lambda_handler(object_created_event(), lambda_context)

    assert (first["status"], again["status"]) == ("started", "duplicate")
    assert again["pipeline_execution_arn"] == first["pipeline_execution_arn"]
    assert again["client_request_token"] == first["client_request_token"]
    assert len(executions(sagemaker)) == 1


def test_a_new_version_of_the_same_key_is_new_data(
    handler: ModuleType, sagemaker: Any, object_created_event: EventFactory, lambda_context: FakeLambdaContext
) -> None:
    handler.lambda_handler(object_created_event(), lambda_context)
    second = handler.lambda_handler(
        object_created_event(version_id="3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH"), lambda_context
    )
    assert second["status"] == "started"
    assert len(executions(sagemaker)) == 2


def test_moto_records_but_ignores_the_client_request_token(sagemaker: Any) -> None:
    """Why the handler also looks for an existing execution: the emulator would start a second one."""
    for _ in range(2):
        sagemaker.start_pipeline_execution(PipelineName=PIPELINE, ClientRequestToken="t" * 64)
    assert len(executions(sagemaker)) == 2


IGNORED = {
    "error prefix": (
        "errors/processing-failed/ingest_date=2024-05-01/rookery-dev-ingest-1.json",
        "Firehose error output",
    ),
    "outside prefix": ("curated/penguins/part-0000.parquet", "is outside the dataset prefix 'penguins/'"),
}


@pytest.mark.parametrize("case", IGNORED.values(), ids=IGNORED.keys())
def test_objects_outside_the_training_data_are_ignored(
    handler: ModuleType,
    sagemaker: Any,
    object_created_event: EventFactory,
    lambda_context: FakeLambdaContext,
    case: tuple[str, str],
) -> None:
    key, reason = case
    result = handler.lambda_handler(object_created_event(key), lambda_context)
    assert result["status"] == "ignored" and reason in result["reason"]
    assert executions(sagemaker) == []


def test_a_malformed_event_is_logged_and_raised(
    handler: ModuleType,
    sagemaker: Any,
    lambda_context: FakeLambdaContext,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "time": "2024-05-01T12:00:05Z",
        "detail": {},
    }
    with pytest.raises(MalformedEventError, match=r"detail\.bucket\.name is missing"):
        handler.lambda_handler(event, lambda_context)
    [record] = [r for r in caplog.records if r.getMessage() == "rejected a malformed event"]
    assert "detail.bucket.name is missing" in record.reason  # type: ignore[attr-defined]
    assert '"MalformedEvents":[1.0]' in capsys.readouterr().out
    assert executions(sagemaker) == []


def test_a_missing_pipeline_raises_so_the_invocation_is_retried(
    aws: None,
    load_handler: LoadHandler,
    object_created_event: EventFactory,
    lambda_context: FakeLambdaContext,
) -> None:
    handler = load_handler("pipeline_trigger", {**ENV, "PIPELINE_NAME": "no-such-pipeline"})
    with pytest.raises(ClientError, match="Could not find pipeline"):
        handler.lambda_handler(object_created_event(), lambda_context)


@pytest.mark.parametrize("missing", ["PIPELINE_NAME", "DATA_PREFIX", "ERROR_PREFIX"])
def test_a_missing_variable_fails_the_cold_start(load_handler: LoadHandler, missing: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{missing} is not set"):
        load_handler("pipeline_trigger", {k: v for k, v in ENV.items() if k != missing})


def test_events_emitted_by_s3_through_eventbridge_drive_the_handler(
    handler: ModuleType, sagemaker: Any, lambda_context: FakeLambdaContext
) -> None:
    """S3 notifications -> EventBridge rule -> queue, as moto emits them; each event goes to the handler."""
    bucket = "rookery-dev-raw-123456789012"
    s3, events, sqs = (boto3.client(s, region_name=REGION) for s in ("s3", "events", "sqs"))
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )
    queue = sqs.create_queue(QueueName="trigger-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    pattern = {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": [bucket]}},
    }
    events.put_rule(Name="raw-object-created", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="raw-object-created", Targets=[{"Id": "trigger", "Arn": queue_arn}])

    s3.put_object(
        Bucket=bucket, Key="penguins/ingest_date=2024-05-01/batch-1.json", Body=b'{"sex": "male"}\n'
    )
    s3.put_object(Bucket=bucket, Key="errors/processing-failed/ingest_date=2024-05-01/batch-1", Body=b"{}\n")
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    results = [handler.lambda_handler(json.loads(m["Body"]), lambda_context) for m in messages]

    assert sorted(r["status"] for r in results) == ["ignored", "started"]
    assert len(executions(sagemaker)) == 1


# --- monitoring alarms on a stage whose reaction is "retrain" ----------------------------------------

RAW = "rookery-dev-raw-123456789012-eu-west-1"
ALARM = "rookery-dev-endpoint-data-quality-violations"
RETRAIN_ENV = {
    **ENV,
    "RAW_BUCKET": RAW,
    "RETRAIN_ALARM_NAMES": json.dumps([ALARM, "rookery-dev-endpoint-model-quality-violations"]),
    "RETRAIN_MIN_INTERVAL_HOURS": "24",
}
INTERVAL = timedelta(hours=24)


@pytest.fixture
def retrainer(sagemaker: Any, load_handler: LoadHandler) -> ModuleType:
    return load_handler("pipeline_trigger", RETRAIN_ENV)


def alarm_now(make: EventFactory, **change: Any) -> tuple[dict[str, Any], datetime]:
    """An alarm event at the current second (moto stamps executions with the current time)."""
    moment = datetime.now(UTC).replace(microsecond=0)
    stamp = moment.isoformat().replace("+00:00", "Z")
    return make(time=stamp, state_time=moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000"), **change), moment


def started_at(arn: str, moment: datetime) -> None:
    """Move a moto execution's start (moto keeps naive UTC times) to ``moment``."""
    stored = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION].pipelines[PIPELINE].pipeline_executions[arn]
    stored.start_time = stored.creation_time = moment.astimezone(UTC).replace(tzinfo=None)


def test_an_alarm_retrains_on_the_dataset_and_registration_still_waits_for_approval(
    retrainer: ModuleType, sagemaker: Any, alarm_event: EventFactory, lambda_context: FakeLambdaContext
) -> None:
    event, _ = alarm_now(alarm_event)
    result = retrainer.lambda_handler(event, lambda_context)

    assert result["status"] == "started" and result["alarm_name"] == ALARM
    assert result["reason"].startswith(f"alarm {ALARM} entered ALARM (from OK) at ")
    assert result["input_data_uri"] == f"s3://{RAW}/penguins/"
    [execution] = executions(sagemaker)
    assert execution["PipelineExecutionArn"] == result["pipeline_execution_arn"]
    assert f"alarm {ALARM} entered ALARM" in execution["PipelineExecutionDescription"]
    parameters = sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=result["pipeline_execution_arn"]
    )["PipelineParameters"]
    # Only the input: ModelApprovalStatus keeps the pipeline's default (PendingManualApproval where the
    # stage requires approval), so the retrained version passes the gate and waits for a person.
    assert parameters == [{"Name": "InputDataUri", "Value": f"s3://{RAW}/penguins/"}]


def test_a_redelivered_alarm_transition_starts_nothing_new(
    retrainer: ModuleType, sagemaker: Any, alarm_event: EventFactory, lambda_context: FakeLambdaContext
) -> None:
    event, _ = alarm_now(alarm_event)
    first = retrainer.lambda_handler(event, lambda_context)
    again = retrainer.lambda_handler({**event, "id": "another-delivery"}, lambda_context)

    assert (first["status"], again["status"]) == ("started", "duplicate")
    assert again["reason"] == "an execution for this alarm transition exists already"
    assert again["pipeline_execution_arn"] == first["pipeline_execution_arn"]
    assert len(executions(sagemaker)) == 1


def test_a_trigger_run_inside_the_interval_rate_limits_the_alarm(
    retrainer: ModuleType,
    sagemaker: Any,
    *,
    alarm_event: EventFactory,
    object_created_event: EventFactory,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    event, moment = alarm_now(alarm_event)
    earlier = retrainer.lambda_handler(object_created_event(), lambda_context)  # new data, any reason
    started_at(earlier["pipeline_execution_arn"], moment - timedelta(hours=3))
    capsys.readouterr()

    result = retrainer.lambda_handler(event, lambda_context)

    assert result["status"] == "rate_limited"
    assert result["recent_execution_arn"] == earlier["pipeline_execution_arn"]
    assert f"the run {earlier['pipeline_execution_arn']} the trigger started at " in result["reason"]
    assert "is less than 24 h old (monitoring.retrain_min_interval_hours)" in result["reason"]
    assert '"RetrainingRateLimited":[1.0]' in capsys.readouterr().out
    assert len(executions(sagemaker)) == 1


@pytest.mark.parametrize(
    ("age", "status"),
    [(INTERVAL, "started"), (INTERVAL - timedelta(seconds=1), "rate_limited")],
    ids=["exactly the interval ago", "a second less"],
)
def test_the_rate_limit_at_its_boundary(
    retrainer: ModuleType,
    sagemaker: Any,
    *,
    alarm_event: EventFactory,
    lambda_context: FakeLambdaContext,
    age: timedelta,
    status: str,
) -> None:
    event, moment = alarm_now(alarm_event)
    previous, _ = alarm_now(alarm_event, name="rookery-dev-endpoint-model-quality-violations")
    previous["detail"]["state"]["timestamp"] = "2000-01-01T00:00:00.000+0000"  # an older transition
    first = retrainer.lambda_handler(previous, lambda_context)
    started_at(first["pipeline_execution_arn"], moment - age)

    assert retrainer.lambda_handler(event, lambda_context)["status"] == status
    assert len(executions(sagemaker)) == (2 if status == "started" else 1)


def test_runs_a_person_started_do_not_rate_limit(
    retrainer: ModuleType, sagemaker: Any, alarm_event: EventFactory, lambda_context: FakeLambdaContext
) -> None:
    sagemaker.start_pipeline_execution(
        PipelineName=PIPELINE, PipelineExecutionDescription="rookery pipeline start"
    )
    event, _ = alarm_now(alarm_event)
    assert retrainer.lambda_handler(event, lambda_context)["status"] == "started"
    assert len(executions(sagemaker)) == 2


@pytest.mark.parametrize(
    ("env", "change", "reason"),
    [
        (RETRAIN_ENV, {"state": "OK", "previous": "ALARM"}, "went from ALARM to OK"),
        (
            RETRAIN_ENV,
            {"name": "rookery-dev-endpoint-5xx-rate"},
            "is not one of the stage's monitoring alarms",
        ),
        (ENV, {}, "this stage's monitoring alarms only notify"),
    ],
    ids=["back to OK", "not ours", "notify stage"],
)
def test_alarm_events_that_do_not_retrain_start_nothing(
    sagemaker: Any,
    *,
    load_handler: LoadHandler,
    alarm_event: EventFactory,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    change: dict[str, str],
    reason: str,
) -> None:
    handler = load_handler("pipeline_trigger", env)
    result = handler.lambda_handler(alarm_event(**change), lambda_context)
    assert result["status"] == "ignored" and reason in result["reason"]
    assert '"AlarmsIgnored":[1.0]' in capsys.readouterr().out
    assert executions(sagemaker) == []


def test_a_malformed_alarm_event_is_logged_and_raised(
    retrainer: ModuleType, sagemaker: Any, alarm_event: EventFactory, lambda_context: FakeLambdaContext
) -> None:
    event = alarm_event(state="FIRING")
    with pytest.raises(MalformedEventError, match=r"detail\.state\.value = 'FIRING' is not an alarm state"):
        retrainer.lambda_handler(event, lambda_context)
    assert executions(sagemaker) == []


# --- the listing, as the real service pages and orders it (moto returns one unordered page) ----------


def _stubbed(pages: list[list[dict[str, Any]]], start: Start) -> tuple[Any, Stubber]:
    client = botocore.session.get_session().create_client(
        "sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    stubber = Stubber(client)
    for number, summaries in enumerate(pages):
        expected = {
            "PipelineName": start.pipeline_name,
            "CreatedAfter": start.listed_after,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        }
        if number:
            expected["NextToken"] = f"page-{number}"
        response: dict[str, Any] = {"PipelineExecutionSummaries": summaries}
        if number < len(pages) - 1:
            response["NextToken"] = f"page-{number + 1}"
        stubber.add_response("list_pipeline_executions", response, expected)
    return client, stubber


def _summary(name: str, start: datetime, description: str) -> dict[str, Any]:
    return {
        "PipelineExecutionArn": f"arn:aws:sagemaker:{REGION}:{DEFAULT_ACCOUNT_ID}:pipeline/{PIPELINE}"
        f"/execution/{name}",
        "StartTime": start,
        "PipelineExecutionDescription": description,
        "PipelineExecutionStatus": "Succeeded",
    }


def _alarm_start(alarm_event: EventFactory) -> Start:
    decision = plan(parse_event(alarm_event()), load_settings(RETRAIN_ENV))
    assert isinstance(decision, Start)
    return decision


def test_every_page_is_read_and_the_recent_trigger_run_on_the_last_one_rate_limits(
    alarm_event: EventFactory,
) -> None:
    start = _alarm_start(alarm_event)
    when = start.created_after
    other_token = f"Retrain on ...: new object ... {token_marker('b' * 64)}"
    client, stubber = _stubbed(
        [
            [_summary("manual", when, "rookery pipeline start")],
            [_summary("recent", when - timedelta(hours=2), other_token)],
        ],
        start,
    )
    with stubber:
        outcome = start_once(client, start)
    stubber.assert_no_pending_responses()
    assert isinstance(outcome, RateLimited) and outcome.recent.execution_arn.endswith("/recent")


def test_the_transition_s_own_run_on_a_later_page_is_a_duplicate_not_a_rate_limit(
    alarm_event: EventFactory,
) -> None:
    start = _alarm_start(alarm_event)
    when = start.created_after
    other_token = f"Retrain on ...: new object ... {token_marker('b' * 64)}"
    own = f"Retrain on ...: {start.cause} {token_marker(start.client_request_token)}"
    client, stubber = _stubbed(
        [[_summary("object-run", when, other_token)], [_summary("own", when, own)]], start
    )
    with stubber:
        outcome = start_once(client, start)
    assert outcome == Started("duplicate", _summary("own", when, own)["PipelineExecutionArn"])

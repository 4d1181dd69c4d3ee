"""The trigger handler against SageMaker and S3/EventBridge emulated by moto: one execution per new object."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sagemaker.models import sagemaker_backends

from pipeline_trigger.plan import MalformedEventError
from pipeline_trigger.settings import ConfigurationError

# Fixtures from conftest.py: a fake Lambda context, a cold-start importer of handlers, S3 events.
LoadHandler = Callable[[str, Mapping[str, str]], ModuleType]
EventFactory = Callable[..., dict[str, Any]]
FakeLambdaContext = object

REGION = "eu-west-1"
PIPELINE = "rookery-dev-pipeline"
ENV = {"PIPELINE_NAME": PIPELINE, "DATA_PREFIX": "penguins/", "ERROR_PREFIX": "errors/"}
DEFINITION = {
    "Version": "2020-12-01",
    "Parameters": [{"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://placeholder/"}],
    "Steps": [],
}


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

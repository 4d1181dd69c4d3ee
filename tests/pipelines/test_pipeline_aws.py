"""``pipelines.aws``: the pipeline's SageMaker operations, called directly on moto (in process) and on
stubbed clients; no CLI."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from pipeline_testing import REGION, RENDER_GROUP, steps_page

from pipelines.aws import (
    STEPS_UNSUPPORTED,
    AwsError,
    Change,
    Connection,
    DefinitionRefusedError,
    ExecutionState,
    OperationError,
    StepState,
    changes,
    deployed_definition,
    execution_state,
    latest_execution,
    role_of,
    start_execution,
    upsert_pipeline,
    wait_for_execution,
)
from pipelines.parameters import ParameterError

pytestmark = pytest.mark.xdist_group(RENDER_GROUP)

ROLE = "arn:aws:iam::000000000000:role/rookery-dev-sagemaker-execution"
ARN = "arn:aws:sagemaker:eu-west-1:000000000000:pipeline/demo/execution/abc123"


@dataclass(frozen=True)
class StubbedConnection(Connection):
    """A connection whose client is given (a botocore ``Stubber`` answers it)."""

    client: Any = None

    def sagemaker(self) -> Any:
        return self.client


def _stubbed_client() -> tuple[Any, Stubber]:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    return client, Stubber(client)


# -- upsert -------------------------------------------------------------------------------------------
@pytest.mark.usefixtures("aws")
def test_upsert_creates_then_updates_with_the_jobs_role(train_definition: dict[str, Any]) -> None:
    connection = Connection(region=REGION)
    created = upsert_pipeline(connection, "demo", train_definition)
    assert created.created and created.arn.endswith(":pipeline/demo")
    described = boto3.client("sagemaker").describe_pipeline(PipelineName="demo")
    assert json.loads(described["PipelineDefinition"]) == train_definition
    assert described["RoleArn"] == ROLE == role_of(train_definition)

    changed = copy.deepcopy(train_definition)
    changed["Parameters"][0]["DefaultValue"] = "s3://elsewhere/penguins/"
    updated = upsert_pipeline(connection, "demo", changed, role_arn=ROLE)
    assert not updated.created and updated.arn == created.arn
    assert deployed_definition(connection, "demo") == changed


@pytest.mark.usefixtures("aws")
def test_upsert_refuses_a_definition_with_findings_before_any_call(train_definition: dict[str, Any]) -> None:
    broken = copy.deepcopy(train_definition)
    broken["Steps"][[s["Name"] for s in broken["Steps"]].index("Train")]["Arguments"][
        "EnableNetworkIsolation"
    ] = False
    with pytest.raises(DefinitionRefusedError) as refused:
        upsert_pipeline(Connection(region=REGION), "demo", broken)
    assert [(f.step, f.control) for f in refused.value.findings] == [("Train", "T2")]
    assert boto3.client("sagemaker").list_pipelines()["PipelineSummaries"] == []


@pytest.mark.usefixtures("aws")
def test_upsert_needs_a_role_when_the_jobs_do_not_share_one(train_definition: dict[str, Any]) -> None:
    mixed = copy.deepcopy(train_definition)
    mixed["Steps"][0]["Arguments"]["RoleArn"] = ROLE.replace("execution", "preprocess")
    assert role_of(mixed) is None
    with pytest.raises(OperationError, match="do not share one role; pass --role-arn"):
        upsert_pipeline(Connection(region=REGION), "demo", mixed)
    assert upsert_pipeline(Connection(region=REGION), "demo", mixed, role_arn=ROLE).created


# -- start / latest / status -----------------------------------------------------------------------------
@pytest.mark.usefixtures("aws")
def test_start_checks_overrides_against_the_deployed_definition(train_definition: dict[str, Any]) -> None:
    connection = Connection(region=REGION)
    upsert_pipeline(connection, "demo", train_definition)
    with pytest.raises(ParameterError, match="AucThreshold is a Float"):
        start_execution(connection, "demo", ["AucThreshold=high"])
    with pytest.raises(OperationError, match="has no executions; start one"):
        latest_execution(connection, "demo")

    first = start_execution(connection, "demo")
    # R1: the stage requires approval; an approved registration is refused before the call.
    with pytest.raises(ParameterError, match="ModelApprovalStatus must be PendingManualApproval"):
        start_execution(connection, "demo", ["ModelApprovalStatus=Approved"])
    second = start_execution(connection, "demo", ["AucThreshold=0.9", "OperatingPoint=best_f1"])
    parameters = boto3.client("sagemaker").list_pipeline_parameters_for_execution(
        PipelineExecutionArn=second
    )["PipelineParameters"]
    assert {"Name": "AucThreshold", "Value": "0.9"} in parameters
    assert {"Name": "OperatingPoint", "Value": "best_f1"} in parameters
    assert first != second and latest_execution(connection, "demo") in (first, second)

    # moto does not list steps: the state says so instead of failing.
    state = execution_state(connection, second)
    assert (state.arn, state.status, state.steps) == (second, "Succeeded", None)
    assert state.note == STEPS_UNSUPPORTED
    assert state.finished and state.failed_step is None


@pytest.mark.usefixtures("aws")
def test_a_missing_pipeline_is_an_aws_error_naming_the_operation() -> None:
    with pytest.raises(AwsError, match=r"^DescribePipeline: ValidationException: Could not find pipeline"):
        start_execution(Connection(region=REGION), "absent")


def test_credential_problems_name_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AwsError, match=r"could not be found; list profiles with `aws configure"):
        Connection(profile="nobody", region=REGION).sagemaker()
    with pytest.raises(AwsError, match=r"^no AWS region: pass --region or --stage, or set AWS_REGION$"):
        latest_execution(Connection(), "demo")


def test_the_latest_execution_is_the_newest_by_creation_time() -> None:
    client, stubber = _stubbed_client()
    stubber.add_response(
        "list_pipeline_executions",
        {"PipelineExecutionSummaries": [{"PipelineExecutionArn": ARN}, {"PipelineExecutionArn": "older"}]},
        {"PipelineName": "demo", "SortBy": "CreationTime", "SortOrder": "Descending"},
    )
    with stubber:
        assert latest_execution(StubbedConnection(client=client), "demo") == ARN
    stubber.assert_no_pending_responses()


def test_the_state_lists_steps_in_start_order_and_names_the_failed_one() -> None:
    client, stubber = _stubbed_client()
    stubber.add_response(
        "describe_pipeline_execution",
        {"PipelineExecutionStatus": "Failed", "FailureReason": "Step failure"},
        {"PipelineExecutionArn": ARN},
    )
    first_page = steps_page(("Preprocess", "Succeeded", ""), ("Train", "Failed", "AlgorithmError: nan"))
    stubber.add_response(
        "list_pipeline_execution_steps", {**first_page, "NextToken": "more"}, {"PipelineExecutionArn": ARN}
    )
    stubber.add_response(
        "list_pipeline_execution_steps",
        {"PipelineExecutionSteps": []},
        {"PipelineExecutionArn": ARN, "NextToken": "more"},
    )
    with stubber:
        state = execution_state(StubbedConnection(client=client), ARN)
    assert state.steps == (
        StepState("Preprocess", "Succeeded"),
        StepState("Train", "Failed", "AlgorithmError: nan"),
    )
    assert state.failed_step == StepState("Train", "Failed", "AlgorithmError: nan")
    assert state.note == "" and state.finished
    stubber.assert_no_pending_responses()


# -- changes / wait ----------------------------------------------------------------------------------
def test_changes_are_new_step_statuses_then_the_executions() -> None:
    before = ExecutionState(ARN, "Executing", "", (StepState("Preprocess", "Executing"),))
    after = ExecutionState(
        ARN,
        "Failed",
        "Step failure",
        (StepState("Preprocess", "Succeeded"), StepState("Train", "Failed", "AlgorithmError: nan")),
    )
    assert changes(None, before) == [Change("Preprocess", "Executing"), Change(None, "Executing")]
    assert changes(before, before) == []
    assert changes(before, after) == [
        Change("Preprocess", "Succeeded"),
        Change("Train", "Failed", "AlgorithmError: nan"),
        Change(None, "Failed"),
    ]


def test_wait_polls_until_the_execution_ends() -> None:
    client, stubber = _stubbed_client()
    for status, steps in [
        ("Executing", steps_page(("Preprocess", "Executing", ""))),
        ("Succeeded", steps_page(("Preprocess", "Succeeded", ""))),
    ]:
        stubber.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": status})
        stubber.add_response("list_pipeline_execution_steps", steps)
    polls: list[tuple[ExecutionState | None, ExecutionState]] = []
    slept: list[float] = []
    with stubber:
        final = wait_for_execution(
            StubbedConnection(client=client),
            ARN,
            poll_seconds=7,
            timeout_seconds=None,
            on_poll=lambda before, after: polls.append((before, after)),
            sleep=slept.append,
        )
    assert final.status == "Succeeded" and slept == [7]
    assert [b is None for b, _ in polls] == [True, False] and polls[1][0] == polls[0][1]
    assert changes(*polls[1]) == [Change("Preprocess", "Succeeded"), Change(None, "Succeeded")]
    stubber.assert_no_pending_responses()


def test_wait_gives_up_at_the_timeout() -> None:
    client, stubber = _stubbed_client()
    for _ in range(2):
        stubber.add_response("describe_pipeline_execution", {"PipelineExecutionStatus": "Executing"})
        stubber.add_response("list_pipeline_execution_steps", steps_page(("Preprocess", "Executing", "")))
    ticks = iter([0.0, 5.0, 11.0])
    seen: list[Change] = []
    with stubber:
        final = wait_for_execution(
            StubbedConnection(client=client),
            ARN,
            poll_seconds=5,
            timeout_seconds=10,
            on_poll=lambda before, after: seen.extend(changes(before, after)),
            sleep=lambda seconds: None,
            clock=lambda: next(ticks),
        )
    assert final.status == "Executing" and not final.finished
    assert seen == [Change("Preprocess", "Executing"), Change(None, "Executing")]
    stubber.assert_no_pending_responses()

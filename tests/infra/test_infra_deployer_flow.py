"""The deployer end to end: the synthesized state machine driving the real handlers.

The definition is read from the synthesized ``Rookery-dev-Serving`` template and run by
``state_machine_runner`` (the States Language subset it uses; waits pass at once). Each Task runs the
handler its template resource names, imported with the environment the template gives it. The
registry, the endpoint and the published events are moto's; the Serving stack is
``deployer_world.ServingStack``, which plays the update statuses moto cannot (in progress, rolled
back, failed, completed while SageMaker put the old config back).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from deployer_world import (
    ACCOUNT,
    BASELINE_PARAMETER,
    ENDPOINT,
    PARAMETER,
    REGION,
    STACK_ID,
    Endpoint,
    Registry,
    ServingStack,
    baseline_uri,
    package_arn,
    published,
)
from infra_testing import Synth
from moto import mock_aws
from state_machine_runner import Execution, resolve_definition

from rookery_contracts.deployer import Limit
from stage.names import DEPLOYMENT_EVENT_SOURCE, DEPLOYMENT_EVENT_TYPE, DEPLOYMENT_METRIC_NAMESPACE

pytestmark = pytest.mark.xdist_group("infra-synth")

OTHER_PARAMETERS = {"BootstrapVersion": "/cdk-bootstrap/hnb659fds/version", "Unrelated": "kept as it is"}
CONTEXT = SimpleNamespace(
    function_name="rookery-dev-deployer",
    function_version="$LATEST",
    memory_limit_in_mb=256,
    invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rookery-dev-deployer",
    aws_request_id="5f3c1d2e-0000-4000-8000-000000000000",
    log_group_name="/aws/lambda/rookery-dev-deployer",
    log_stream_name="2024/05/01/[$LATEST]0123456789abcdef",
    get_remaining_time_in_millis=lambda: 60_000,
)


def _resolve(value: Any) -> str:
    """The deployed value of a function's environment variable (tokens as this test account has them)."""
    if isinstance(value, str):
        return value
    if value == {"Ref": "AWS::StackId"}:
        return STACK_ID
    if isinstance(value, Mapping) and "Fn::GetAtt" in value:
        return f"arn:aws:iam::{ACCOUNT}:role/rookery-dev/serving-deployment/{value['Fn::GetAtt'][0]}"
    raise AssertionError(f"unexpected environment value {value!r}")


@dataclass
class World:
    synth: Synth
    registry: Registry
    endpoint: Endpoint
    stack: ServingStack
    handler: ModuleType
    handlers: dict[str, Any]
    sqs: Any
    queue_url: str
    runs: int = 0

    @property
    def definition(self) -> dict[str, Any]:
        [machine] = [
            r
            for r in self.synth.serving["Resources"].values()
            if r["Type"] == "AWS::StepFunctions::StateMachine"
        ]
        return resolve_definition(machine["Properties"]["DefinitionString"], _function_arn)

    def start(self, event: Mapping[str, Any] | None = None) -> Execution:
        self.runs += 1
        return Execution(
            self.definition, self.handlers, dict(event or approval(1)), name=f"execution-{self.runs}"
        )

    def run(self, event: Mapping[str, Any] | None = None) -> Execution:
        return self.start(event).run()

    def events(self) -> list[dict[str, Any]]:
        return [e["detail"] for e in published(self.sqs, self.queue_url)]

    def deploy(self, version: int) -> None:
        """Put ``version`` live the way a finished deployment leaves it (stack parameters and endpoint)."""
        self.stack.parameters[PARAMETER] = package_arn(version)
        self.stack.parameters[BASELINE_PARAMETER] = baseline_uri(version)
        self.endpoint.serve(package_arn(version))


def _function_arn(logical_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{logical_id}"


def approval(version: int, status: str = "Approved", group: str = "rookery-dev-models") -> dict[str, Any]:
    """A model package state change as SageMaker sends it to EventBridge."""
    return {
        "version": "0",
        "id": f"0f1e2d3c-0000-4000-8000-00000000000{version}",
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2024-05-01T12:00:00Z",
        "region": REGION,
        "resources": [package_arn(version)],
        "detail": {
            "ModelPackageGroupName": group,
            "ModelPackageVersion": version,
            "ModelPackageArn": package_arn(version),
            "ModelApprovalStatus": status,
        },
    }


@pytest.fixture
def world(dev: Synth, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    functions = {
        logical_id: resource["Properties"]
        for logical_id, resource in dev.serving["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"]["Handler"].startswith("model_")
    }
    environments = [
        {k: _resolve(v) for k, v in f["Environment"]["Variables"].items()} for f in functions.values()
    ]
    assert len(functions) == 5 and all(env == environments[0] for env in environments)
    for name, value in environments[0].items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        queue_url = sqs.create_queue(QueueName="deployments")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="deployments",
            EventPattern=json.dumps(
                {"source": [DEPLOYMENT_EVENT_SOURCE], "detail-type": [DEPLOYMENT_EVENT_TYPE]}
            ),
        )
        events.put_targets(Rule="deployments", Targets=[{"Id": "queue", "Arn": queue_arn}])
        endpoint = Endpoint(sagemaker)
        stack = ServingStack(endpoint, parameters={PARAMETER: "", BASELINE_PARAMETER: "", **OTHER_PARAMETERS})
        sys.modules.pop("model_deployer.handler", None)
        handler = importlib.import_module("model_deployer.handler")
        monkeypatch.setattr(
            handler,
            "clients",
            lambda: handler.Clients(cloudformation=stack, sagemaker=sagemaker, events=events),
        )
        handlers = {
            _function_arn(logical_id): _task(getattr(handler, f["Handler"].rsplit(".", 1)[-1]))
            for logical_id, f in functions.items()
        }
        yield World(dev, Registry(sagemaker), endpoint, stack, handler, handlers, sqs, queue_url)
    sys.modules.pop("model_deployer.handler", None)


def _task(function: Any) -> Any:
    return lambda state: function(state, CONTEXT)


def _status(events: list[dict[str, Any]]) -> list[tuple[str, str, int | None]]:
    return [(e["status"], e["action"], (e["target"] or {}).get("version")) for e in events]


# ---------------------------------------------------------------- deployments that succeed


def test_an_approval_deploys_through_the_stack_and_verifies_the_live_endpoint(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    world.registry.register(1, "Approved")
    capsys.readouterr()
    execution = world.run(approval(1))

    assert execution.status == "SUCCEEDED", (execution.error, execution.cause)
    assert world.endpoint.serving() == package_arn(1)
    [request] = world.stack.accepted
    assert request["UsePreviousTemplate"] is True
    assert request["RoleARN"] == world.handler.SETTINGS.deployment_role_arn
    assert request["Capabilities"] == world.stack.capabilities
    # The model and its monitoring baseline in one update; every other parameter kept.
    expected = [
        {"ParameterKey": PARAMETER, "ParameterValue": package_arn(1)},
        {"ParameterKey": BASELINE_PARAMETER, "ParameterValue": baseline_uri(1)},
        *({"ParameterKey": key, "UsePreviousValue": True} for key in OTHER_PARAMETERS),
    ]
    assert sorted(request["Parameters"], key=str) == sorted(expected, key=str)
    assert world.stack.parameters == {
        PARAMETER: package_arn(1),
        BASELINE_PARAMETER: baseline_uri(1),
        **OTHER_PARAMETERS,
    }
    [event] = world.events()
    assert (event["status"], event["action"], event["target"]["version"]) == ("Succeeded", "deploy", 1)
    assert event["reason"] == "the endpoint serves version 1, InService"
    assert event["endpoint"] == ENDPOINT and event["previous"] is None
    steps = [t["step"] for t in event["timeline"]]
    assert steps[:2] == ["decide", "update"] and steps[-1] == "verify" and "poll" in steps
    assert event["timeline"][1]["detail"] == (
        f"stack update to version 1 started; monitoring baseline {baseline_uri(1)}"
    )
    # The execution decided once more after the deployment, then ended.
    assert execution.history.count("Decide") == 2 and execution.history[-1] == "Converged"
    # The outcome's metric, as Powertools writes it (CloudWatch embedded metric format).
    metrics = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    [metric] = metrics
    [directive] = metric["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == DEPLOYMENT_METRIC_NAMESPACE
    assert directive["Metrics"] == [{"Name": "Succeeded", "Unit": "Count"}]
    assert (metric["Endpoint"], metric["Succeeded"]) == (ENDPOINT, [1.0])


def test_a_duplicate_event_changes_nothing_and_says_so(world: World) -> None:
    world.registry.register(1, "Approved")
    assert world.run(approval(1)).status == "SUCCEEDED"
    world.events()

    duplicate = world.run(approval(1))

    assert duplicate.status == "SUCCEEDED"
    assert len(world.stack.accepted) == 1
    [event] = world.events()
    assert _status([event]) == [("NoChange", "none", 1)]
    assert "already serves version 1" in event["reason"]


def test_the_stack_already_at_the_requested_version_is_a_no_op(world: World) -> None:
    world.registry.register(2, "Approved")
    world.deploy(2)

    execution = world.run(approval(2))

    assert execution.status == "SUCCEEDED" and world.stack.accepted == []
    assert _status(world.events()) == [("NoChange", "none", 2)]


def test_stale_and_out_of_order_events_converge_on_the_highest_approved(world: World) -> None:
    world.registry.register(3, "Approved")
    world.deploy(3)
    world.registry.register(1, "Approved")  # version 4
    # The approval of 4 and a stale one of 2 arrive in the wrong order, and 4's twice.
    runs = [world.run(approval(v)) for v in (2, 4, 2, 4)]

    assert [r.status for r in runs] == ["SUCCEEDED"] * 4
    assert world.endpoint.serving() == package_arn(4)
    assert [
        p["ParameterValue"]
        for r in world.stack.accepted
        for p in r["Parameters"]
        if p["ParameterKey"] == PARAMETER
    ] == [package_arn(4)]
    # The first execution (woken by the stale event) deployed 4; the rest found nothing to do.
    assert _status(world.events()) == [("Succeeded", "deploy", 4), *[("NoChange", "none", 4)] * 3]


def test_rejecting_the_live_version_rolls_back_to_the_previous_approved(world: World) -> None:
    world.registry.register(2, "Approved")
    world.deploy(2)
    world.registry.set(2, "Rejected")

    execution = world.run(approval(2, "Rejected"))

    assert execution.status == "SUCCEEDED"
    assert world.endpoint.serving() == package_arn(1)
    [event] = world.events()
    assert (event["status"], event["action"], event["target"]["version"]) == ("Succeeded", "rollback", 1)
    assert event["previous"] == {"arn": package_arn(2), "version": 2, "status": "Rejected"}
    # The version rolled back to comes back with its own baseline.
    assert world.stack.parameters[BASELINE_PARAMETER] == baseline_uri(1)


def test_a_version_without_baselines_deploys_with_monitoring_off_and_says_so(world: World) -> None:
    world.registry.register(1, "Approved")
    world.deploy(1)
    world.registry.register(1, "Approved", baselines=False)  # version 2, registered by hand

    execution = world.run(approval(2))

    assert execution.status == "SUCCEEDED"
    assert world.endpoint.serving() == package_arn(2)
    [request] = world.stack.accepted
    values = {p["ParameterKey"]: p.get("ParameterValue") for p in request["Parameters"]}
    assert (values[PARAMETER], values[BASELINE_PARAMETER]) == (package_arn(2), "")
    assert world.stack.parameters[BASELINE_PARAMETER] == ""  # no schedule watches version 2
    [event] = world.events()
    assert (event["status"], event["action"], event["target"]["version"]) == ("Succeeded", "deploy", 2)
    off = (
        "monitoring off: version 2 has no monitoring baseline, it carries no DriftCheckBaselines "
        "(registered without the pipeline's Baseline step)"
    )
    assert event["reason"] == f"the endpoint serves version 2, InService; {off}"
    assert event["timeline"][1]["detail"] == f"stack update to version 2 started; {off}"


# ---------------------------------------------------------------- one deployment at a time


def _interleave(*executions: Execution, limit: int = 5000) -> None:
    for _ in range(limit):
        running = [e for e in executions if e.status == "RUNNING"]
        if not running:
            return
        for execution in running:
            execution.step()
    raise AssertionError("the executions did not finish")


def test_an_approval_during_a_deployment_waits_for_it_then_converges(world: World) -> None:
    world.registry.register(1, "Approved")
    first = world.start(approval(1))
    while first.state != "WaitForStack":  # the first deployment is under way
        first.step()
    world.registry.register(1, "Approved")  # version 2, approved while 1 deploys
    second = world.start(approval(2))

    _interleave(first, second)
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert "WaitWhileBusy" in second.history  # it found the stack busy and waited
    assert world.endpoint.serving() == package_arn(2)
    outcomes = _status(world.events())
    assert [o for o in outcomes if o[0] != "NoChange"] == [
        ("Succeeded", "deploy", 1),
        ("Succeeded", "deploy", 2),
    ]
    assert len(world.stack.accepted) == 2  # one update per version, never two at once


def test_an_update_followed_by_its_token_is_never_mistaken_for_the_next_one(world: World) -> None:
    """The second execution updates the stack before the first looks again after its own update ended."""
    world.registry.register(1, "Approved")
    first = world.start(approval(1))
    while first.state != "WaitForStack":
        first.step()
    world.registry.register(1, "Approved")  # version 2
    world.stack.finish()  # the first update ends between two of its polls...
    second = world.start(approval(2))
    while second.state != "WaitForStack":  # ...the second execution's update starts...
        second.step()
    world.stack.finish()  # ...and ends, all before the first execution looks again

    first.run()
    second.run()

    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    first_event, second_event = [e for e in world.events() if e["status"] != "NoChange"]
    assert (first_event["target"]["version"], first_event["status"]) == (1, "Succeeded")
    assert "a later deployment has since put version 2 on the endpoint" in first_event["reason"]
    assert (second_event["target"]["version"], second_event["reason"]) == (
        2,
        "the endpoint serves version 2, InService",
    )


def test_a_rolled_back_update_stays_a_failure_when_a_later_one_replaced_it(world: World) -> None:
    world.registry.register(1, "Approved")
    world.stack.endings.append("rolls-back")
    first = world.start(approval(1))
    while first.state != "WaitForStack":
        first.step()
    world.registry.register(1, "Approved")  # version 2
    world.stack.finish()  # version 1's update rolls back between two of the first execution's polls
    second = world.start(approval(2))
    while second.state != "WaitForStack":
        second.step()

    _interleave(first, second)

    assert (first.status, second.status) == ("FAILED", "SUCCEEDED")
    assert world.endpoint.serving() == package_arn(2)
    failed = [e for e in world.events() if e["status"] == "Failed"]
    assert _status(failed) == [("Failed", "deploy", 1)]
    assert "the update to version 1 was rolled back" in failed[0]["reason"]


def test_racing_executions_update_once_and_the_loser_finds_nothing_to_do(world: World) -> None:
    world.registry.register(1, "Approved")
    one, two = world.start(approval(1)), world.start(approval(1))

    _interleave(one, two)  # both decide before either updates; the second sees the first's update

    assert (one.status, two.status) == ("SUCCEEDED", "SUCCEEDED")
    assert len(world.stack.accepted) == 1
    assert "WaitWhileBusy" in two.history
    assert world.endpoint.serving() == package_arn(1)
    assert sorted(_status(world.events())) == [("NoChange", "none", 1), ("Succeeded", "deploy", 1)]


def test_losing_the_race_to_update_stack_waits_then_finds_nothing_to_do(world: World) -> None:
    """Another execution's UpdateStack lands between this one's look at the stack and its own call."""
    world.registry.register(1, "Approved")
    update_stack = world.stack.update_stack

    def overtaken(**request: Any) -> dict[str, Any]:
        world.stack.update_stack = update_stack
        update_stack(**{**request, "ClientRequestToken": "rookery-the-other-execution-1"})
        return update_stack(**request)

    world.stack.update_stack = overtaken

    execution = world.run(approval(1))

    assert execution.status == "SUCCEEDED"
    assert world.stack.refused == [f"Stack:{STACK_ID} is in UPDATE_IN_PROGRESS state and can not be updated."]
    assert [r["ClientRequestToken"] for r in world.stack.accepted] == ["rookery-the-other-execution-1"]
    assert execution.history.index("WaitWhileBusy") > execution.history.index("Update")
    assert world.endpoint.serving() == package_arn(1)
    [event] = world.events()
    assert _status([event]) == [("NoChange", "none", 1)]


def test_a_stack_busy_for_longer_than_a_deployment_may_take_is_reported(world: World) -> None:
    world.registry.register(1, "Approved")
    world.stack.status = "UPDATE_IN_PROGRESS"  # someone else's update that never ends

    execution = world.run(approval(1))

    limits = world.definition["States"]["Start"]["Parameters"]["limits"]
    assert execution.status == "FAILED" and execution.error == "DeploymentFailed"
    assert execution.waited == [limits[Limit.WAIT_SECONDS]] * (limits[Limit.BUSY_CHECKS] - 1)
    [event] = world.events()
    assert event["status"] == "Failed" and "a person must look" in event["reason"]
    assert world.stack.accepted == []


# ---------------------------------------------------------------- deployments that fail


@pytest.mark.parametrize(
    ("ending", "reason"),
    [
        ("rolls-back", "was rolled back"),
        ("fails", "failed"),
        ("rollback-fails", "cannot update it until a person repairs it"),
    ],
)
def test_a_cloudformation_update_that_fails_or_rolls_back_is_a_failed_deployment(
    world: World, ending: Any, reason: str
) -> None:
    world.registry.register(1, "Approved")
    world.deploy(1)
    world.registry.register(1, "Approved")
    world.stack.endings.append(ending)

    execution = world.run(approval(2))

    assert execution.status == "FAILED" and execution.error == "DeploymentFailed"
    assert world.endpoint.serving() == package_arn(1)
    [event] = world.events()
    assert (event["status"], event["action"], event["target"]["version"]) == ("Failed", "deploy", 2)
    assert reason in event["reason"] and reason in str(execution.cause)
    assert "the endpoint serves version 1" in event["reason"]


def test_an_endpoint_silently_left_on_the_old_config_is_a_failed_deployment(world: World) -> None:
    world.registry.register(1, "Approved")
    world.deploy(1)
    world.registry.register(1, "Approved")
    world.stack.endings.append("silently-rolled-back")

    execution = world.run(approval(2))

    assert world.stack.status == "UPDATE_COMPLETE"  # CloudFormation calls it a success
    assert execution.status == "FAILED"
    [event] = world.events()
    assert event["status"] == "Failed"
    assert "the update completed but the endpoint serves version 1, not version 2" in event["reason"]


def test_a_broken_stack_is_reported_and_left_alone(world: World) -> None:
    world.registry.register(1, "Approved")
    world.stack.status = "UPDATE_ROLLBACK_FAILED"

    execution = world.run(approval(1))

    assert execution.status == "FAILED" and world.stack.accepted == []
    [event] = world.events()
    assert "UPDATE_ROLLBACK_FAILED" in event["reason"] and "a person repairs it" in event["reason"]


def test_nothing_approved_after_a_reject_holds_and_asks_for_a_person(world: World) -> None:
    world.registry.register(1, "Approved")
    world.deploy(1)
    world.registry.set(1, "Rejected")

    execution = world.run(approval(1, "Rejected"))

    assert execution.status == "FAILED" and world.stack.accepted == []
    assert world.endpoint.serving() == package_arn(1)
    [event] = world.events()
    assert (event["status"], event["action"]) == ("Failed", "hold")
    assert "no other version is approved" in event["reason"] and "a person must act" in event["reason"]


def test_an_aws_error_in_a_task_is_retried_then_published_as_a_failure(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def denied(**_: Any) -> dict[str, Any]:
        raise ClientError(
            {
                "Error": {
                    "Code": "AccessDenied",
                    "Message": "not authorized to perform cloudformation:DescribeStacks",
                }
            },
            "DescribeStacks",
        )

    monkeypatch.setattr(world.stack, "describe_stacks", denied)

    execution = world.run(approval(1))

    assert execution.status == "FAILED"
    assert execution.attempts["Decide"] == 3  # the first try and two retries
    [event] = world.events()
    assert event["status"] == "Failed"
    assert "ClientError" in event["reason"] and "not authorized" in event["reason"]


def test_every_wait_is_the_stages_and_the_loops_are_bounded_by_its_deployment_policy(world: World) -> None:
    limits = world.definition["States"]["Start"]["Parameters"]["limits"]
    update_seconds = world.synth.stage.serving.deployment.update_seconds()
    assert limits[Limit.BUSY_CHECKS] * limits[Limit.WAIT_SECONDS] >= update_seconds
    assert limits[Limit.POLLS] * limits[Limit.WAIT_SECONDS] >= update_seconds
    for name in ("WaitWhileBusy", "WaitForStack"):
        assert world.definition["States"][name]["Seconds"] == limits[Limit.WAIT_SECONDS]
    assert world.definition["TimeoutSeconds"] > (1 + limits[Limit.DEPLOYMENTS]) * update_seconds

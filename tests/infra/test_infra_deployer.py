"""Control H5's deployer in the synthesized ``Rookery-<stage>-Serving`` of every stage: the approval rule
(its pattern matched by EventBridge itself, moto's), the state machine, the functions and the
CloudFormation service role. Expectations come from the stage and the construct objects, never from
hard-coded logical ids. The deployer's behaviour, executed, is in ``test_infra_deployer_flow.py``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import pytest
from infra_testing import Synth, arn_of, ref, resources
from moto import mock_aws

from infra.audit.template import flatten
from infra.constructs.deployer import APPROVAL_DETAIL_TYPE, APPROVAL_SOURCE, ModelDeployer
from infra.constructs.props import PropsError
from infra.stacks.stage_props import deployer_props
from rookery_contracts.deployer import Task
from rookery_contracts.env import (
    BASELINE_PARAMETER_ENV,
    DEPLOYMENT_ROLE_ENV,
    MODEL_PARAMETER_ENV,
    SERVING_STACK_ENV,
)
from stage import STAGES_DIR
from stage.names import (
    APPROVED_MODEL_PARAMETER,
    MONITORING_BASELINE_PARAMETER,
    approval_rule_name,
    deployer_name,
    deployment_role_path,
    endpoint_name,
    model_package_group_name,
    monitoring_alarm_names,
    monitoring_role_path,
    monitoring_schedule_names,
    serving_role_path,
)
from stage.paths import REPO_ROOT

pytestmark = pytest.mark.xdist_group("infra-synth")


def _deployer(synth: Synth) -> ModelDeployer:
    assert synth.stacks.serving is not None
    return synth.stacks.serving.deployer


def _statements(synth: Synth, role: Any) -> list[Mapping[str, Any]]:
    return [
        s
        for p in resources(synth.serving, "AWS::IAM::Policy").values()
        if ref(synth.logical_id(role)) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: Mapping[str, Any]) -> set[str]:
    action = statement["Action"]
    return set(action if isinstance(action, list) else [action])


def test_every_deployer_resource_exists_before_any_approval(synth: Synth) -> None:
    deployer = _deployer(synth)
    constructs = [
        deployer.state_machine,
        deployer.rule,
        deployer.rule_role,
        deployer.deployment_role,
        deployer.log_group,
        deployer.rule_dead_letter_queue,
        *(f.function for f in deployer.functions.values()),
    ]
    for construct in constructs:
        assert "Condition" not in synth.resource(construct), construct.node.path


def test_the_rule_starts_the_state_machine_on_approvals_and_rejections_of_the_stages_group(
    synth: Synth,
) -> None:
    deployer = _deployer(synth)
    rule = synth.props(deployer.rule)
    assert rule["Name"] == approval_rule_name(synth.stage)
    assert rule["EventPattern"] == {
        "source": [APPROVAL_SOURCE],
        "detail-type": [APPROVAL_DETAIL_TYPE],
        "detail": {
            "ModelPackageGroupName": [model_package_group_name(synth.stage)],
            "ModelApprovalStatus": ["Approved", "Rejected"],
        },
    }
    [target] = rule["Targets"]
    assert target["Arn"] == ref(synth.logical_id(deployer.state_machine))
    assert target["RoleArn"] == arn_of(synth.logical_id(deployer.rule_role))
    assert target["DeadLetterConfig"]["Arn"] == arn_of(synth.logical_id(deployer.rule_dead_letter_queue))
    assert 0 < target["RetryPolicy"]["MaximumRetryAttempts"] <= 5


def _state_change(group: str, status: str) -> dict[str, Any]:
    version = 3
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{group}/{version}"
    return {
        "Source": APPROVAL_SOURCE,
        "DetailType": APPROVAL_DETAIL_TYPE,
        "Resources": [arn],
        "Detail": json.dumps(
            {
                "ModelPackageGroupName": group,
                "ModelPackageVersion": version,
                "ModelPackageArn": arn,
                "ModelApprovalStatus": status,
            }
        ),
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


def test_eventbridge_matches_the_synthesized_pattern_to_approvals_and_rejections_only(
    dev: Synth, aws: None
) -> None:
    """The pattern as the template holds it, put on moto's EventBridge, which matches events itself."""
    pattern = dev.props(_deployer(dev).rule)["EventPattern"]
    group = model_package_group_name(dev.stage)
    events = boto3.client("events", region_name="eu-west-1")
    sqs = boto3.client("sqs", region_name="eu-west-1")
    queue = sqs.create_queue(QueueName="deployer-starts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="approvals", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="approvals", Targets=[{"Id": "q", "Arn": queue_arn}])

    sent = [
        _state_change(group, "Approved"),
        _state_change(group, "PendingManualApproval"),
        _state_change("someone-elses-models", "Approved"),
        _state_change(group, "Rejected"),
        {**_state_change(group, "Approved"), "Source": "rookery.forged"},
    ]
    assert events.put_events(Entries=sent)["FailedEntryCount"] == 0

    received = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            received.append(json.loads(message["Body"])["detail"])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    assert sorted((d["ModelPackageGroupName"], d["ModelApprovalStatus"]) for d in received) == [
        (group, "Approved"),
        (group, "Rejected"),
    ]


def test_the_state_machine_is_standard_logged_traced_and_bounded(synth: Synth) -> None:
    deployer = _deployer(synth)
    machine = synth.props(deployer.state_machine)
    assert machine["StateMachineName"] == deployer_name(synth.stage)
    assert machine["StateMachineType"] == "STANDARD"  # a blue/green update outlasts a Lambda's 15 minutes
    assert machine["TracingConfiguration"] == {"Enabled": True}
    logging = machine["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    [destination] = logging["Destinations"]
    assert destination["CloudWatchLogsLogGroup"]["LogGroupArn"] == arn_of(
        synth.logical_id(deployer.log_group)
    )
    assert synth.props(deployer.log_group)["KmsKeyId"]
    definition = json.loads(flatten(machine["DefinitionString"]))
    update_seconds = synth.stage.serving.deployment.update_seconds()
    assert definition["TimeoutSeconds"] > 2 * update_seconds
    # Waiting is the state machine's: Wait states, never a Lambda that sleeps.
    assert {s["Type"] for s in definition["States"].values()} >= {"Wait", "Task", "Choice"}
    for function in deployer.functions.values():
        assert synth.props(function.function)["Timeout"] <= 300


def test_every_task_runs_with_the_serving_stack_and_the_deployment_role(synth: Synth) -> None:
    deployer = _deployer(synth)
    assert set(deployer.functions) == set(Task)
    for task, function in deployer.functions.items():
        props = synth.props(function.function)
        assert props["Handler"] == f"model_deployer.handler.{task}"
        assert props["FunctionName"] == f"{deployer_name(synth.stage)}-{task}"
        env = props["Environment"]["Variables"]
        assert env[SERVING_STACK_ENV] == {"Ref": "AWS::StackId"}
        assert env[MODEL_PARAMETER_ENV] == APPROVED_MODEL_PARAMETER
        assert env[BASELINE_PARAMETER_ENV] == MONITORING_BASELINE_PARAMETER
        assert env[DEPLOYMENT_ROLE_ENV] == arn_of(synth.logical_id(deployer.deployment_role))
        assert props["VpcConfig"]["SubnetIds"]


def test_only_the_update_task_may_update_the_stack_and_only_with_the_deployment_role(synth: Synth) -> None:
    deployer = _deployer(synth)
    role_arn = arn_of(synth.logical_id(deployer.deployment_role))
    for task, function in deployer.functions.items():
        statements = _statements(synth, function.role)
        updates = [s for s in statements if "cloudformation:UpdateStack" in _actions(s)]
        passes = [s for s in statements if "iam:PassRole" in _actions(s)]
        if task is not Task.UPDATE:
            assert updates == [] and passes == [], task
            continue
        [update] = updates
        assert update["Resource"] == {"Ref": "AWS::StackId"}
        assert update["Condition"] == {"StringEquals": {"cloudformation:RoleArn": role_arn}}
        [passing] = passes
        assert passing["Resource"] == role_arn
        assert passing["Condition"] == {
            "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
        }


def test_only_the_update_task_reads_a_versions_baseline_and_only_in_the_stages_group(synth: Synth) -> None:
    deployer = _deployer(synth)
    for task, function in deployer.functions.items():
        reads = [
            s for s in _statements(synth, function.role) if "sagemaker:DescribeModelPackage" in _actions(s)
        ]
        if task is not Task.UPDATE:
            assert reads == [], task
            continue
        [read] = reads
        assert _actions(read) == {"sagemaker:DescribeModelPackage"}
        group = model_package_group_name(synth.stage)
        assert flatten(read["Resource"]).endswith(f":model-package/{group}/*")


def test_no_role_but_the_deployment_role_may_change_an_endpoint(synth: Synth) -> None:
    deployer = _deployer(synth)
    writers = {
        role_id
        for role_id in resources(synth.serving, "AWS::IAM::Role")
        for p in resources(synth.serving, "AWS::IAM::Policy").values()
        if ref(role_id) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if _actions(s) & {"sagemaker:UpdateEndpoint", "sagemaker:CreateEndpoint", "sagemaker:DeleteEndpoint"}
    }
    assert writers == {synth.logical_id(deployer.deployment_role)}


def test_the_deployment_role_is_cloudformations_of_this_account_scoped_to_the_serving_stack(
    synth: Synth,
) -> None:
    deployer = _deployer(synth)
    role = synth.props(deployer.deployment_role)
    assert role["Path"] == deployment_role_path(synth.stage)
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    statements = _statements(synth, deployer.deployment_role)
    endpoint = f":endpoint/{endpoint_name(synth.stage)}"
    for statement in statements:
        targets = [
            flatten(r)
            for r in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
        ]
        for action in _actions(statement):
            assert "*" not in action, action
            if action.startswith("sagemaker:") and "Endpoint" in action and "Config" not in action:
                assert all(t.endswith(endpoint) for t in targets), (action, targets)
        if targets == ["*"]:
            assert _actions(statement) <= {
                "application-autoscaling:DescribeScalableTargets",
                "application-autoscaling:DescribeScalingPolicies",
            }
    # It passes the model's role and the monitoring jobs' role, each by its path, to SageMaker only.
    passing = [s for s in statements if "iam:PassRole" in _actions(s)]
    assert sorted(flatten(s["Resource"]).rsplit(":role", 1)[1] for s in passing) == sorted(
        [f"{monitoring_role_path(synth.stage)}*", f"{serving_role_path(synth.stage)}*"]
    )
    for statement in passing:
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    models = [s for s in statements if "sagemaker:CreateModel" in _actions(s)]
    assert models and all("aws:RequestTag/project" in s["Condition"]["StringEquals"] for s in models)


def test_the_deployment_role_manages_the_endpoints_monitoring_and_nothing_else_of_the_kind(
    synth: Synth,
) -> None:
    """The baseline parameter creates, moves and removes the schedules, the job definition and alarms."""
    statements = _statements(synth, _deployer(synth).deployment_role)

    def resources_of(action: str) -> set[str]:
        return {
            flatten(r)
            for s in statements
            if action in _actions(s)
            for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        }

    schedules = resources_of("sagemaker:CreateMonitoringSchedule")
    assert {s.rsplit(":monitoring-schedule/", 1)[1] for s in schedules} == set(
        monitoring_schedule_names(synth.stage).values()
    )
    assert resources_of("sagemaker:DeleteMonitoringSchedule") == schedules
    alarms = {a.rsplit(":alarm:", 1)[1] for a in resources_of("cloudwatch:PutMetricAlarm")}
    assert set(monitoring_alarm_names(synth.stage).values()) <= alarms
    # The job definition's name is generated: the stage's tags scope it, on creation and after.
    for action, key in (
        ("sagemaker:CreateModelQualityJobDefinition", "aws:RequestTag/project"),
        ("sagemaker:DeleteModelQualityJobDefinition", "aws:ResourceTag/project"),
    ):
        [statement] = [s for s in statements if action in _actions(s)]
        assert flatten(statement["Resource"]).endswith(":model-quality-job-definition/*")
        assert key in statement["Condition"]["StringEquals"]


def test_cdk_deploy_keeps_the_deployed_model_parameter() -> None:
    """A later ``cdk deploy`` sends UsePreviousValue for the parameter: the pinned CLI's
    ``--previous-parameters`` is on by default and nothing in the repository switches it off."""
    cli = (REPO_ROOT / "node_modules/aws-cdk/lib/cli/parse-command-line-arguments.js").read_text()
    options = re.findall(r"\.option\('previous-parameters', \{\s*default: (\w+),", cli)
    assert options and set(options) == {"true"}
    settings = json.loads((REPO_ROOT / "cdk.json").read_text())
    assert "previousParameters" not in json.dumps(settings) and "previous-parameters" not in json.dumps(
        settings
    )
    for text in [(REPO_ROOT / "Makefile").read_text(), *(p.read_text() for p in STAGES_DIR.glob("*.toml"))]:
        assert "no-previous-parameters" not in text and APPROVED_MODEL_PARAMETER not in text


def test_the_monitoring_the_deployer_manages_is_named_whole_or_not_at_all(synth: Synth) -> None:
    props = deployer_props(synth.stage)
    assert props.monitoring_role_path == monitoring_role_path(synth.stage)
    unmonitored = dataclasses.replace(
        props, monitoring_schedule_names=(), monitoring_alarm_names=(), monitoring_role_path=None
    )
    assert unmonitored.monitoring_role_path is None
    for change in ({"monitoring_role_path": None}, {"monitoring_alarm_names": ()}):
        with pytest.raises(PropsError, match=r"DeployerProps\.monitoring_role_path = .*together, or none"):
            dataclasses.replace(props, **change)

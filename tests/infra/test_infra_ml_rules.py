"""rookery's SageMaker rules on small hand-written templates: each fires on the bad case, not the good.

Pipeline bodies here are written as CloudFormation writes them (``Fn::Join`` around references and
an image URI in ``Fn::Sub``), so the rules' reading of intrinsics is tested too.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra.audit.rules import GUARDRAIL_KEYS, ROOKERY_RULES, resolve_text

IMAGE = {
    "Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/cdk-hnb659fds-container-assets:abc"
}
KEY = {"Fn::GetStackOutput": {"StackName": "Rookery-dev-Data", "OutputName": "ArtifactsKeyArn"}}
SUBNET = {"Fn::GetStackOutput": {"StackName": "Rookery-dev-Network", "OutputName": "Subnet1"}}
GROUP = {"Fn::GetStackOutput": {"StackName": "Rookery-dev-Network", "OutputName": "SageMakerGroup"}}
MARK = "@@{}@@"


def _processing() -> dict[str, Any]:
    return {
        "Name": "Preprocess",
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"VolumeKmsKeyId": MARK.format("key")}},
            "AppSpecification": {"ImageUri": MARK.format("image")},
            "ProcessingOutputConfig": {"KmsKeyId": MARK.format("key"), "Outputs": []},
            "NetworkConfig": {
                "EnableNetworkIsolation": True,
                "EnableInterContainerTrafficEncryption": True,
                "VpcConfig": {"Subnets": [MARK.format("subnet")], "SecurityGroupIds": [MARK.format("group")]},
            },
        },
    }


def _training() -> dict[str, Any]:
    return {
        "Name": "Train",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": MARK.format("image"), "TrainingInputMode": "File"},
            "ResourceConfig": {"VolumeKmsKeyId": MARK.format("key")},
            "OutputDataConfig": {"KmsKeyId": MARK.format("key"), "S3OutputPath": "s3://b/p"},
            "VpcConfig": {"Subnets": [MARK.format("subnet")], "SecurityGroupIds": [MARK.format("group")]},
            "EnableNetworkIsolation": True,
            "EnableInterContainerTrafficEncryption": True,
            "EnableManagedSpotTraining": True,
            "CheckpointConfig": {"S3Uri": "s3://b/p/checkpoints"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
        },
    }


def _template(*steps: dict[str, Any], raw_body: Any = None) -> dict[str, Any]:
    """A pipeline resource whose body is the definition, joined around the references."""
    body: Any = raw_body
    if body is None:
        text = json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": list(steps)})
        values = {"key": KEY, "image": IMAGE, "subnet": SUBNET, "group": GROUP}
        parts: list[Any] = []
        for i, chunk in enumerate(text.split("@@")):
            parts.append(values[chunk] if i % 2 else chunk)
        body = {"Fn::Join": ["", parts]}
    return {
        "Resources": {
            "Pipeline": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {
                    "PipelineName": "p",
                    "RoleArn": "r",
                    "PipelineDefinition": {"PipelineDefinitionBody": body},
                },
            }
        }
    }


def _perimeter(template: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f.rule_id, f.message) for f in ROOKERY_RULES.evaluate(template) if f.rule_id.startswith("Rookery-T")
    ]


def test_resolve_text_keeps_an_image_uri_private_ecr_shaped_and_stands_in_for_references() -> None:
    assert (
        resolve_text(IMAGE)
        == "000000000000.dkr.ecr.us-east-1.amazonaws.com/cdk-hnb659fds-container-assets:abc"
    )
    assert resolve_text(
        {"Fn::Join": ["-", ["a", {"Ref": "AWS::Region"}, {"Fn::GetAtt": ["Role", "Arn"]}]]}
    ) == ("a-us-east-1-cfn-Role")
    assert resolve_text({"Fn::Sub": ["x-${Name}", {"Name": {"Ref": "Thing"}}]}) == "x-cfn-Thing"


def test_a_perimeter_respecting_pipeline_passes() -> None:
    assert _perimeter(_template(_processing(), _training())) == []


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        (("NetworkConfig", "VpcConfig", "Subnets"), [], "Rookery-T1"),
        (("NetworkConfig", "EnableNetworkIsolation"), False, "Rookery-T2"),
        (("NetworkConfig", "EnableInterContainerTrafficEncryption"), None, "Rookery-T3"),
        (("ProcessingResources", "ClusterConfig", "VolumeKmsKeyId"), None, "Rookery-T4"),
        (("ProcessingOutputConfig", "KmsKeyId"), "", "Rookery-T4"),
        (("AppSpecification", "ImageUri"), "docker.io/library/python:3.11", "Rookery-T6"),
    ],
)
def test_each_perimeter_rule_fires_on_its_control(path: tuple[str, ...], value: Any, rule: str) -> None:
    step = _processing()
    holder = step["Arguments"]
    for key in path[:-1]:
        holder = holder[key]
    if value is None:
        del holder[path[-1]]
    else:
        holder[path[-1]] = value
    found = _perimeter(_template(step))
    assert {r for r, _ in found} == {rule}, found
    assert all("step Preprocess" in message for _, message in found)


def test_spot_training_without_a_checkpoint_fires_t5() -> None:
    step = _training()
    del step["Arguments"]["CheckpointConfig"]
    assert [r for r, _ in _perimeter(_template(step))] == ["Rookery-T5"]


def test_an_image_from_another_repository_fires_t6() -> None:
    training = _training()
    training["Arguments"]["AlgorithmSpecification"]["TrainingImage"] = (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/someone-else:latest"
    )
    found = _perimeter(_template(_processing(), training))
    assert [r for r, _ in found] == ["Rookery-T6"] and "not the project image" in found[0][1]


def test_an_acknowledged_exception_with_its_reason_does_not_fire() -> None:
    training = _training()
    training["Arguments"]["AlgorithmSpecification"]["TrainingImage"] = (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    )
    training["Description"] = "Acknowledged T6: the built-in XGBoost image is pinned and scanned by AWS"
    assert _perimeter(_template(_processing(), training)) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "is not JSON"),
        ('{"Version": "2020-12-01"}', "has no Steps list"),
    ],
)
def test_an_unreadable_body_fires_t1(body: str, message: str) -> None:
    found = _perimeter(_template(raw_body=body))
    assert [r for r, _ in found] == ["Rookery-T1"] and message in found[0][1]


def test_a_definition_kept_in_s3_is_unaudited_and_fires_t1() -> None:
    template = _template(_processing())
    definition = template["Resources"]["Pipeline"]["Properties"]["PipelineDefinition"]
    del definition["PipelineDefinitionBody"]
    definition["PipelineDefinitionS3Location"] = {"Bucket": "b", "Key": "k"}
    assert [r for r, _ in _perimeter(template)] == ["Rookery-T1"]


# ---------------------------------------------------------------- N5, N6


def _notebook(**changes: Any) -> dict[str, Any]:
    props = {
        "PlatformIdentifier": "notebook-al2023-v1",
        "LifecycleConfigName": {"Fn::GetAtt": ["Lifecycle", "NotebookInstanceLifecycleConfigName"]},
        **changes,
    }
    return {
        "Resources": {
            "Notebook": {"Type": "AWS::SageMaker::NotebookInstance", "Properties": props},
            "Lifecycle": {
                "Type": "AWS::SageMaker::NotebookInstanceLifecycleConfig",
                "Properties": {"OnStart": [{"Content": "IyEvYmluL2Jhc2gK"}]},
            },
        }
    }


def _messages(template: dict[str, Any], rule_id: str) -> list[str]:
    return [f.message for f in ROOKERY_RULES.evaluate(template) if f.rule_id == rule_id]


def test_n5_accepts_al2023_with_an_on_start_script() -> None:
    assert _messages(_notebook(), "Rookery-N5") == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"PlatformIdentifier": "notebook-al2-v2"}, "not a supported Amazon Linux 2023"),
        ({"LifecycleConfigName": None}, "no lifecycle configuration"),
        ({"LifecycleConfigName": {"Fn::ImportValue": "x"}}, "cannot be checked"),
    ],
)
def test_n5_fires_on_old_platforms_and_missing_auto_stop(changes: dict[str, Any], message: str) -> None:
    template = _notebook(**changes)
    props = template["Resources"]["Notebook"]["Properties"]
    for key in [k for k, v in props.items() if v is None]:
        del props[key]
    assert [m for m in _messages(template, "Rookery-N5") if message in m]


def test_n5_fires_on_a_lifecycle_without_on_start() -> None:
    template = _notebook()
    template["Resources"]["Lifecycle"]["Properties"] = {"OnCreate": [{"Content": "eA=="}]}
    assert _messages(template, "Rookery-N5") == [
        "the lifecycle configuration has no OnStart script (the idle auto-stop)"
    ]


VPCE = {"Fn::GetStackOutput": {"StackName": "Rookery-dev-Network", "OutputName": "NotebookEndpoint"}}
FROM_ENDPOINT = {"StringEquals": {"aws:SourceVpce": [VPCE]}}


def _policy(
    resource: Any,
    action: str = "sagemaker:CreatePresignedNotebookInstanceUrl",
    condition: dict[str, Any] | None = FROM_ENDPOINT,
) -> dict[str, Any]:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition is not None:
        statement["Condition"] = condition
    return {"Type": "AWS::IAM::ManagedPolicy", "Properties": {"PolicyDocument": {"Statement": [statement]}}}


@pytest.mark.parametrize(
    ("resource", "action", "fires"),
    [
        ("arn:aws:sagemaker:eu-west-1:123456789012:notebook-instance/rookery-dev-notebook", None, False),
        ("*", None, True),
        ("arn:aws:sagemaker:eu-west-1:123456789012:notebook-instance/*", None, True),
        ("*", "sagemaker:*", True),
        ("*", "sagemaker:CreatePresigned*", True),
        ("*", "sagemaker:DescribeNotebookInstance", False),
    ],
)
def test_n6_fires_when_jupyter_can_be_opened_on_any_notebook(
    resource: str, action: str | None, fires: bool
) -> None:
    template = {
        "Resources": {"Open": _policy(resource, action or "sagemaker:CreatePresignedNotebookInstanceUrl")}
    }
    assert bool(_messages(template, "Rookery-N6")) is fires


NOTEBOOK = "arn:aws:sagemaker:eu-west-1:123456789012:notebook-instance/rookery-dev-notebook"


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (FROM_ENDPOINT, None),
        ({"ForAnyValue:StringEquals": {"aws:sourceVpce": ["vpce-0123456789abcdef0"]}}, None),
        ({"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}, None),
        (None, "has no aws:SourceVpce (StringEquals) or aws:SourceIp (IpAddress) condition"),
        ({"StringEquals": {"aws:PrincipalAccount": "123456789012"}}, "has no aws:SourceVpce"),
        # Negated operators in an allow admit every network but the one named.
        ({"StringNotEquals": {"aws:SourceVpce": "vpce-0123456789abcdef0"}}, "has no aws:SourceVpce"),
        ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, "has no aws:SourceVpce"),
        ({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}, "admits every address (0.0.0.0/0)"),
        ({"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "::/0"]}}, "admits every address (::/0)"),
        ({"StringEquals": {"aws:SourceVpce": "vpce-*"}}, "admits any VPC endpoint"),
    ],
)
def test_n6_fires_when_jupyter_can_be_opened_from_any_network(
    condition: dict[str, Any] | None, message: str | None
) -> None:
    template = {"Resources": {"Open": _policy(NOTEBOOK, condition=condition)}}
    found = _messages(template, "Rookery-N6")
    if message is None:
        assert found == []
    else:
        assert len(found) == 1 and message in found[0], found


def test_n6_ignores_permission_boundaries_which_grant_nothing() -> None:
    template = {
        "Resources": {
            "Boundary": _policy("*", "sagemaker:*"),
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"PermissionsBoundary": {"Ref": "Boundary"}}},
        }
    }
    assert _messages(template, "Rookery-N6") == []


# ---------------------------------------------------------------- I2, L2


def _sagemaker_role(boundary: dict[str, Any] | None, denied: set[str]) -> dict[str, Any]:
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}]}
    role: dict[str, Any] = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust}}
    resources: dict[str, Any] = {"Role": role}
    if boundary is not None:
        role["Properties"]["PermissionsBoundary"] = boundary
        statements = [
            {"Effect": "Deny", "Action": "sagemaker:*", "Resource": "*", "Condition": {"Null": {key: "true"}}}
            for key in sorted(denied)
        ]
        resources["Boundary"] = {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {"PolicyDocument": {"Statement": statements}},
        }
    return {"Resources": resources}


def test_i2_accepts_a_boundary_that_denies_on_every_guardrail_key() -> None:
    assert _messages(_sagemaker_role({"Ref": "Boundary"}, set(GUARDRAIL_KEYS)), "Rookery-I2") == []


def test_i2_fires_without_a_boundary_or_with_a_boundary_missing_a_key() -> None:
    assert _messages(_sagemaker_role(None, set()), "Rookery-I2") == [
        "the SageMaker role has no permissions boundary"
    ]
    keys = set(GUARDRAIL_KEYS) - {"sagemaker:intercontainertrafficencryption"}
    [message] = _messages(_sagemaker_role({"Ref": "Boundary"}, keys), "Rookery-I2")
    assert "sagemaker:intercontainertrafficencryption" in message


def _event_target(**target: Any) -> dict[str, Any]:
    return {
        "Resources": {
            "Function": {"Type": "AWS::Lambda::Function", "Properties": {}},
            "Rule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Targets": [{"Id": "T", "Arn": {"Fn::GetAtt": ["Function", "Arn"]}, **target}]
                },
            },
        }
    }


def test_l2_requires_a_dlq_and_a_bounded_retry_policy_on_lambda_targets() -> None:
    good = {
        "DeadLetterConfig": {"Arn": "arn:aws:sqs:eu-west-1:123456789012:dlq"},
        "RetryPolicy": {"MaximumRetryAttempts": 4, "MaximumEventAgeInSeconds": 7200},
    }
    assert _messages(_event_target(**good), "Rookery-L2") == []
    no_dlq = copy.deepcopy(good)
    del no_dlq["DeadLetterConfig"]
    assert [m for m in _messages(_event_target(**no_dlq), "Rookery-L2") if "dead-letter" in m]
    no_retry = {"DeadLetterConfig": good["DeadLetterConfig"]}
    assert [m for m in _messages(_event_target(**no_retry), "Rookery-L2") if "retry policy" in m]


# ---------------------------------------------------------------- R1


PENDING = "PendingManualApproval"


PARAMETER_STATUS = {"Get": "Parameters.ModelApprovalStatus"}
_UNSET: Any = object()


def _approval_template(
    *,
    status: Any = _UNSET,
    enum: list[str] | None = _UNSET,
    default: str = PENDING,
    register: dict[str, Any] | None = None,
    extra_statements: tuple[dict[str, Any], ...] = (),
    boundary: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A pipeline that registers a model, its execution role, the role's policy and boundary."""
    status = PARAMETER_STATUS if status is _UNSET else status
    enum = [PENDING] if enum is _UNSET else enum
    parameter: dict[str, Any] = {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": default}
    if enum is not None:
        parameter["EnumValues"] = enum
    step = {"Name": "Register", "Type": "RegisterModel", "Arguments": {"ModelApprovalStatus": status}}
    gate = {"Name": "Gate", "Type": "Condition", "Arguments": {"IfSteps": [step], "ElseSteps": []}}
    definition = {"Version": "2020-12-01", "Parameters": [parameter], "Steps": [gate]}
    register = (
        register
        if register is not None
        else {
            "Effect": "Allow",
            "Action": "sagemaker:CreateModelPackage",
            "Resource": "arn:aws:sagemaker:eu-west-1:123456789012:model-package/rookery-dev-models/*",
            "Condition": {"StringEquals": {"sagemaker:ModelApprovalStatus": [PENDING]}},
        }
    )
    denies = (
        boundary
        if boundary is not None
        else [
            {"Effect": "Deny", "Action": "sagemaker:UpdateModelPackage", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "sagemaker:CreateModelPackage",
                "Resource": "*",
                "Condition": {"StringNotEquals": {"sagemaker:ModelApprovalStatus": PENDING}},
            },
        ]
    )
    return {
        "Resources": {
            "Pipeline": {
                "Type": "AWS::SageMaker::Pipeline",
                "Properties": {
                    "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
                    "PipelineDefinition": {
                        "PipelineDefinitionBody": {"Fn::Join": ["", [json.dumps(definition)]]}
                    },
                },
            },
            "Role": {"Type": "AWS::IAM::Role", "Properties": {"PermissionsBoundary": {"Ref": "Boundary"}}},
            "Policy": {
                "Type": "AWS::IAM::Policy",
                "Properties": {
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": {"Statement": [register, *extra_statements]},
                },
            },
            "Boundary": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [{"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"}, *denies]
                    }
                },
            },
        }
    }


def test_r1_accepts_a_pending_only_registration_under_a_boundary_that_denies_approval() -> None:
    assert _messages(_approval_template(), "Rookery-R1") == []
    assert _messages(_approval_template(status=PENDING), "Rookery-R1") == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # What the pipeline accepted before R1: any of the three statuses at run time.
        (
            {"enum": [PENDING, "Approved", "Rejected"]},
            "accepts ['PendingManualApproval', 'Approved', 'Rejected']",
        ),
        ({"enum": None}, "accepts any value at run time"),
        ({"default": "Approved", "enum": ["Approved"]}, "accepts ['Approved']"),
        ({"status": "Approved"}, 'ModelApprovalStatus is "Approved"'),
        ({"status": {"Get": "Parameters.Other"}}, "parameter Other, which the definition does not declare"),
        (
            {"register": {"Effect": "Allow", "Action": "sagemaker:CreateModelPackage", "Resource": "*"}},
            "may sagemaker:CreateModelPackage with statuses other than pending",
        ),
        (
            {
                "register": {
                    "Effect": "Allow",
                    "Action": "sagemaker:Create*",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"sagemaker:ModelApprovalStatus": [PENDING, "Approved"]}},
                }
            },
            "may sagemaker:CreateModelPackage with statuses other than pending",
        ),
        (
            {
                "extra_statements": [
                    {"Effect": "Allow", "Action": "sagemaker:UpdateModelPackage", "Resource": "*"}
                ]
            },
            "may sagemaker:UpdateModelPackage: it can approve what it registers",
        ),
        (
            {"extra_statements": ({"Effect": "Allow", "Action": "sagemaker:*", "Resource": "*"},)},
            "may sagemaker:UpdateModelPackage",
        ),
        ({"boundary": []}, "its boundary does not deny sagemaker:UpdateModelPackage"),
        (
            {"boundary": [{"Effect": "Deny", "Action": "sagemaker:UpdateModelPackage", "Resource": "*"}]},
            "its boundary does not deny sagemaker:CreateModelPackage unless",
        ),
    ],
)
def test_r1_fails_whenever_an_approved_version_can_be_registered_or_approved(
    changes: dict[str, Any], message: str
) -> None:
    found = _messages(_approval_template(**changes), "Rookery-R1")
    assert [m for m in found if message in m], found


def test_r1_cannot_check_a_pipeline_whose_role_lives_elsewhere() -> None:
    template = _approval_template()
    template["Resources"]["Pipeline"]["Properties"]["RoleArn"] = {"Fn::ImportValue": "role"}
    assert _messages(template, "Rookery-R1") == [
        "the pipeline's execution role is not in this template and cannot be checked"
    ]

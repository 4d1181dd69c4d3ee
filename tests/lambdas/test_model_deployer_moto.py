"""The deployer's AWS readers and its one write against moto: the registry listing (explicit descending
order, every page), the Serving stack's state, and ``UpdateStack`` with the previous template, the new
model parameter and every other parameter's previous value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from model_deployer.registry import list_versions
from model_deployer.settings import ConfigurationError, load_settings
from model_deployer.stack import Attempt, StackParameterError, read_stack, start_update
from rookery_contracts.deployment import Action, decide

REGION = "eu-west-1"
GROUP = "rookery-dev-models"
STACK = "Rookery-dev-Serving"
ROLE = "arn:aws:iam::123456789012:role/rookery-dev/serving-deployment/Role"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rookery-dev-image:1"
# The Serving stack's shape as far as UpdateStack is concerned: the model parameter and another one.
TEMPLATE = {
    "Parameters": {
        "ApprovedModelPackageArn": {"Type": "String", "Default": ""},
        "BootstrapVersion": {"Type": "String", "Default": "/cdk-bootstrap/hnb659fds/version"},
    },
    "Conditions": {
        "HasApprovedModel": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApprovedModelPackageArn"}, ""]}]}
    },
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    "Outputs": {"Live": {"Value": {"Ref": "ApprovedModelPackageArn"}}},
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def _register(sagemaker: Any, statuses: list[str]) -> None:
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    for status in statuses:
        sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [{"Image": IMAGE}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )


def test_every_version_is_listed_newest_first_across_pages(aws: None) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    statuses = ["Approved", "Rejected", "Approved", *["PendingManualApproval"] * 8, "Approved", "Rejected"]
    _register(sagemaker, statuses)
    requests: list[dict[str, Any]] = []

    def small_pages(params: dict[str, Any], **_: Any) -> None:
        params["MaxResults"] = 2  # the listing must follow NextToken through seven pages
        requests.append(dict(params))

    sagemaker.meta.events.register("provide-client-params.sagemaker.ListModelPackages", small_pages)

    versions = list_versions(sagemaker, GROUP)

    assert len(requests) == 7
    assert {(r["SortBy"], r["SortOrder"], r["ModelPackageType"]) for r in requests} == {
        ("CreationTime", "Descending", "Versioned")
    }
    assert [v.version for v in versions] == list(range(len(statuses), 0, -1))
    assert [v.status for v in reversed(versions)] == statuses
    decision = decide(versions, None)
    assert (decision.action, decision.target and decision.target.version) == (Action.DEPLOY, 12)


def _create_stack(cloudformation: Any) -> str:
    answer = cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(TEMPLATE),
        Parameters=[{"ParameterKey": "BootstrapVersion", "ParameterValue": "21"}],
    )
    return str(answer["StackId"])


def _parameters(cloudformation: Any) -> dict[str, str]:
    [stack] = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    return {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}


def test_the_update_sets_the_model_and_keeps_every_other_parameter(aws: None) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    stack_id = _create_stack(cloudformation)
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/3"
    reading = read_stack(cloudformation, STACK)
    assert reading is not None and reading.stack_id == stack_id
    assert reading.value("ApprovedModelPackageArn") is None  # empty: nothing approved yet

    first = start_update(
        cloudformation,
        reading,
        parameter="ApprovedModelPackageArn",
        value=arn,
        role_arn=ROLE,
        token="rookery-a-1",
    )

    assert first.attempt is Attempt.STARTED
    assert _parameters(cloudformation) == {"ApprovedModelPackageArn": arn, "BootstrapVersion": "21"}
    [stack] = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    assert stack["RoleARN"] == ROLE
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == {"Live": arn}
    # The same value again: CloudFormation has nothing to do, which the deployer reads as "already there".
    again = read_stack(cloudformation, STACK)
    assert again is not None
    repeat = start_update(
        cloudformation,
        again,
        parameter="ApprovedModelPackageArn",
        value=arn,
        role_arn=ROLE,
        token="rookery-b-1",
    )
    assert repeat.attempt is Attempt.UNCHANGED and "No updates are to be performed" in repeat.message


def test_a_stack_without_the_model_parameter_is_refused_before_any_call(aws: None) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    _create_stack(cloudformation)
    reading = read_stack(cloudformation, STACK)
    assert reading is not None
    with pytest.raises(StackParameterError, match="the stack has no parameter 'ModelArn'"):
        start_update(cloudformation, reading, parameter="ModelArn", value="x", role_arn=ROLE, token="t")


def test_a_missing_stack_reads_as_none(aws: None) -> None:
    assert read_stack(boto3.client("cloudformation", region_name=REGION), STACK) is None


def test_settings_name_the_missing_or_wrong_variable() -> None:
    environ = {
        "SERVING_STACK": STACK,
        "MODEL_PARAMETER_NAME": "ApprovedModelPackageArn",
        "DEPLOYMENT_ROLE_ARN": ROLE,
        "MODEL_PACKAGE_GROUP_NAME": GROUP,
        "ENDPOINT_NAME": "rookery-dev-endpoint",
        "VARIANT_NAME": "primary",
        "DEPLOYMENT_EVENT_SOURCE": "rookery.deployer",
        "DEPLOYMENT_EVENT_TYPE": "Rookery Model Deployment",
        "DEPLOYMENT_METRIC_NAMESPACE": "Rookery/Deployments",
    }
    assert load_settings(environ).stack == STACK
    with pytest.raises(ConfigurationError, match="DEPLOYMENT_ROLE_ARN is not set"):
        load_settings({k: v for k, v in environ.items() if k != "DEPLOYMENT_ROLE_ARN"})
    with pytest.raises(ConfigurationError, match=r"DEPLOYMENT_EVENT_SOURCE = 'aws\.sagemaker'.*reserves"):
        load_settings({**environ, "DEPLOYMENT_EVENT_SOURCE": "aws.sagemaker"})
    with pytest.raises(ConfigurationError, match="MODEL_PACKAGE_GROUP_NAME = 'rookery_dev' is not valid"):
        load_settings({**environ, "MODEL_PACKAGE_GROUP_NAME": "rookery_dev"})

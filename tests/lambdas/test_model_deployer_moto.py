"""The deployer's AWS readers and its one write against moto: the registry listing (explicit descending
order, every page), a version's monitoring baseline, the Serving stack's state, and ``UpdateStack``
with the previous template, the new model and baseline parameters and every other parameter's
previous value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from model_deployer.registry import list_versions, read_baseline
from model_deployer.settings import ConfigurationError, load_settings
from model_deployer.stack import Attempt, StackParameterError, read_stack, start_update
from rookery_contracts.deployment import Action, decide
from rookery_contracts.monitoring import CONSTRAINTS_FILE, DATA_QUALITY, STATISTICS_FILE, baseline_file

REGION = "eu-west-1"
GROUP = "rookery-dev-models"
STACK = "Rookery-dev-Serving"
ROLE = "arn:aws:iam::123456789012:role/rookery-dev/serving-deployment/Role"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/rookery-dev-image:1"
BASELINE = "s3://rookery-dev-artifacts/rookery-dev-pipeline/execution-1/baseline"
# The Serving stack's shape as far as UpdateStack is concerned: the model and baseline parameters and
# another one.
TEMPLATE = {
    "Parameters": {
        "ApprovedModelPackageArn": {"Type": "String", "Default": ""},
        "MonitoringBaselineUri": {"Type": "String", "Default": ""},
        "BootstrapVersion": {"Type": "String", "Default": "/cdk-bootstrap/hnb659fds/version"},
    },
    "Conditions": {
        "HasApprovedModel": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApprovedModelPackageArn"}, ""]}]}
    },
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    "Outputs": {
        "Live": {"Value": {"Ref": "ApprovedModelPackageArn"}},
        "Baseline": {"Value": {"Ref": "MonitoringBaselineUri"}},
    },
}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


def _register(sagemaker: Any, statuses: list[str], **extra: Any) -> list[str]:
    """Versions of the group (created on first use) with ``statuses``; ``extra``: more of the request."""
    if not sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]:
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    specification = {
        "Containers": [{"Image": IMAGE}],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }
    return [
        str(
            sagemaker.create_model_package(
                ModelPackageGroupName=GROUP,
                ModelApprovalStatus=status,
                InferenceSpecification=specification,
                **extra,
            )["ModelPackageArn"]
        )
        for status in statuses
    ]


def _drift_check_baselines(root: str) -> dict[str, Any]:
    """What Register attaches: the Baseline step's files under ``root``, as the pipeline names them."""

    def file(name: str) -> dict[str, str]:
        return {"ContentType": "application/json", "S3Uri": f"{root}/{baseline_file(DATA_QUALITY, name)}"}

    return {"ModelDataQuality": {"Statistics": file(STATISTICS_FILE), "Constraints": file(CONSTRAINTS_FILE)}}


def test_a_versions_baseline_is_the_prefix_its_drift_check_baselines_name(aws: None) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    [arn] = _register(sagemaker, ["Approved"], DriftCheckBaselines=_drift_check_baselines(BASELINE))
    requests: list[dict[str, Any]] = []
    sagemaker.meta.events.register(
        "provide-client-params.sagemaker.DescribeModelPackage", lambda params, **_: requests.append(params)
    )

    baseline = read_baseline(sagemaker, arn)

    assert (baseline.uri, baseline.reason) == (BASELINE, "")
    assert requests == [{"ModelPackageName": arn}]


def test_a_version_without_baselines_has_none_and_says_why(aws: None) -> None:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    [bare] = _register(sagemaker, ["Approved"])
    statistics = {"ContentType": "application/json", "S3Uri": "s3://elsewhere/stats.json"}
    [odd] = _register(
        sagemaker, ["Approved"], DriftCheckBaselines={"ModelDataQuality": {"Statistics": statistics}}
    )

    registered_by_hand = read_baseline(sagemaker, bare)
    assert registered_by_hand.uri is None
    assert "carries no DriftCheckBaselines" in registered_by_hand.reason
    another_layout = read_baseline(sagemaker, odd)
    assert another_layout.uri is None
    assert "'s3://elsewhere/stats.json' is not a Baseline step's" in another_layout.reason


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


def test_the_update_sets_the_model_and_its_baseline_and_keeps_every_other_parameter(aws: None) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    stack_id = _create_stack(cloudformation)
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/3"
    reading = read_stack(cloudformation, STACK)
    assert reading is not None and reading.stack_id == stack_id
    assert reading.value("ApprovedModelPackageArn") is None  # empty: nothing approved yet

    values = {"ApprovedModelPackageArn": arn, "MonitoringBaselineUri": BASELINE}
    first = start_update(cloudformation, reading, values=values, role_arn=ROLE, token="rookery-a-1")

    assert first.attempt is Attempt.STARTED
    assert _parameters(cloudformation) == {**values, "BootstrapVersion": "21"}
    [stack] = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    assert stack["RoleARN"] == ROLE
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == {"Live": arn, "Baseline": BASELINE}
    # The same value again: CloudFormation has nothing to do, which the deployer reads as "already there".
    again = read_stack(cloudformation, STACK)
    assert again is not None
    repeat = start_update(cloudformation, again, values=values, role_arn=ROLE, token="rookery-b-1")
    assert repeat.attempt is Attempt.UNCHANGED and "No updates are to be performed" in repeat.message
    # A version without a baseline empties the parameter (monitoring off) in the same update.
    older = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/2"
    unmonitored = {"ApprovedModelPackageArn": older, "MonitoringBaselineUri": ""}
    current = read_stack(cloudformation, STACK)
    assert current is not None
    third = start_update(cloudformation, current, values=unmonitored, role_arn=ROLE, token="rookery-c-1")
    assert third.attempt is Attempt.STARTED
    assert _parameters(cloudformation) == {**unmonitored, "BootstrapVersion": "21"}


def test_a_stack_without_the_model_parameter_is_refused_before_any_call(aws: None) -> None:
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    _create_stack(cloudformation)
    reading = read_stack(cloudformation, STACK)
    assert reading is not None
    with pytest.raises(StackParameterError, match="the stack has no parameter 'ModelArn'"):
        start_update(cloudformation, reading, values={"ModelArn": "x"}, role_arn=ROLE, token="t")
    with pytest.raises(StackParameterError, match="the stack has no parameter 'Baseline'"):
        start_update(
            cloudformation,
            reading,
            values={"ApprovedModelPackageArn": "x", "Baseline": ""},
            role_arn=ROLE,
            token="t",
        )


def test_a_missing_stack_reads_as_none(aws: None) -> None:
    assert read_stack(boto3.client("cloudformation", region_name=REGION), STACK) is None


def test_settings_name_the_missing_or_wrong_variable() -> None:
    environ = {
        "SERVING_STACK": STACK,
        "MODEL_PARAMETER_NAME": "ApprovedModelPackageArn",
        "BASELINE_PARAMETER_NAME": "MonitoringBaselineUri",
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
    with pytest.raises(ConfigurationError, match="BASELINE_PARAMETER_NAME is not set"):
        load_settings({k: v for k, v in environ.items() if k != "BASELINE_PARAMETER_NAME"})
    with pytest.raises(ConfigurationError, match="both name 'ApprovedModelPackageArn'"):
        load_settings({**environ, "BASELINE_PARAMETER_NAME": "ApprovedModelPackageArn"})
    with pytest.raises(ConfigurationError, match=r"DEPLOYMENT_EVENT_SOURCE = 'aws\.sagemaker'.*reserves"):
        load_settings({**environ, "DEPLOYMENT_EVENT_SOURCE": "aws.sagemaker"})
    with pytest.raises(ConfigurationError, match="MODEL_PACKAGE_GROUP_NAME = 'rookery_dev' is not valid"):
        load_settings({**environ, "MODEL_PACKAGE_GROUP_NAME": "rookery_dev"})

"""The Serving constructs on their own (the contract of ``infra/constructs/__init__.py``).

Props refuse invalid values and combinations with the props, the field, the value and the fix; a
small probe stack built from default props proves each "Secure default:"; the pure pieces (traffic
routing, the answer table, the size pattern) and the instance-storage path, which no shipped stage
uses, are tested here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.constructs.endpoint import (
    VOLUME_ENCRYPTION_METADATA,
    EndpointProps,
    ModelSecurityGroupProps,
    deployment_config,
    traffic_routing,
)
from infra.constructs.endpoint_alarms import RollbackAlarmsProps
from infra.constructs.endpoint_scaling import AutoscalingProps
from infra.constructs.inference_api import (
    ERROR_RESPONSES,
    InferenceApiProps,
    PayloadLimitProps,
    greater_than_pattern,
    invoke_endpoint_payload_limit,
)
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS
from infra.constructs.props import PropsError
from infra.constructs.serving_role import ServingRoleProps, capture_exception
from stage import load_stage
from stage.alarms import rollback_alarms
from stage.serving import DeploymentPolicy
from stage.toolchain import use_venv_node

use_venv_node()  # before aws_cdk is imported: jsii must start the venv's Node

import aws_cdk as cdk  # noqa: E402
from aws_cdk import aws_ec2 as ec2  # noqa: E402
from aws_cdk import aws_iam as iam  # noqa: E402
from aws_cdk import aws_kms as kms  # noqa: E402
from aws_cdk import aws_s3 as s3  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402
from constructs import IConstruct  # noqa: E402

from infra.app import register_audit, repo_context, synthesize  # noqa: E402
from infra.audit.assembly import read_assembly  # noqa: E402
from infra.audit.gate import evaluate  # noqa: E402
from infra.constructs.endpoint import ServingEndpoint  # noqa: E402
from infra.constructs.inference_api import InferenceApi  # noqa: E402

pytestmark = pytest.mark.xdist_group("infra-constructs")

PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/probe-models/1"
NVME_REASON = "ml.g5.xlarge keeps the model on local NVMe instance storage encrypted by the instance"


def _endpoint(**overrides: Any) -> EndpointProps:
    fields: dict[str, Any] = {
        "endpoint_name": "probe-dev-endpoint",
        "variant_name": "primary",
        "model_package": PACKAGE,
        "instance_type": "ml.c5.large",
        "initial_instance_count": 2,
        "capture_prefix": "capture/",
        "capture_sampling_percent": 100,
        "capture_csv_content_types": ("text/csv",),
        "capture_json_content_types": ("application/json",),
        "deployment": DeploymentPolicy(),
        "rollback_alarm_names": ("probe-dev-endpoint-5xx-rate",),
    }
    return EndpointProps(**{**fields, **overrides})


def _role(**overrides: Any) -> ServingRoleProps:
    fields: dict[str, Any] = {
        "qualifier": "probe-dev",
        "role_path": "/probe-dev/serving-model/",
        "endpoint_name": "probe-dev-endpoint",
        "model_artifacts_prefix": "probe-pipeline/",
        "capture_prefix": "capture/",
    }
    return ServingRoleProps(**{**fields, **overrides})


def _scaling(**overrides: Any) -> AutoscalingProps:
    fields: dict[str, Any] = {
        "endpoint_name": "probe-dev-endpoint",
        "variant_name": "primary",
        "min_instances": 2,
        "max_instances": 4,
        "invocations_per_instance": 600,
        "scale_in_cooldown_seconds": 300,
        "scale_out_cooldown_seconds": 60,
    }
    return AutoscalingProps(**{**fields, **overrides})


def _api(**overrides: Any) -> InferenceApiProps:
    fields: dict[str, Any] = {
        "api_name": "probe-dev-inference",
        "stage_name": "v1",
        "endpoint_name": "probe-dev-endpoint",
        "throttle_rate_per_second": 50,
        "throttle_burst": 100,
        "quota_per_day": 1000,
    }
    return InferenceApiProps(**{**fields, **overrides})


# ---------------------------------------------------------------- invalid props fail early and clearly

ALARMS = rollback_alarms(load_stage("dev"))

INVALID: list[tuple[str, Callable[[], object], str]] = [
    ("nvme without a reason", lambda: _endpoint(instance_type="ml.g5.xlarge"),
     "EndpointProps.instance_storage_reason = None: ml.g5.xlarge has NVMe instance storage, where "
     "SageMaker rejects a volume KMS key"),
    ("a reason without nvme", lambda: _endpoint(instance_storage_reason=NVME_REASON),
     "EndpointProps.instance_storage_reason = 'ml.g5.*': ml.c5.large has an EBS volume, which must be "
     "encrypted with the volume key"),
    ("no instance", lambda: _endpoint(initial_instance_count=0),
     "EndpointProps.initial_instance_count = 0: an endpoint needs at least 1 instance"),
    ("capture prefix", lambda: _endpoint(capture_prefix="/capture"),
     "EndpointProps.capture_prefix = '/capture': must be an S3 key prefix"),
    ("sampling", lambda: _endpoint(capture_sampling_percent=101),
     "EndpointProps.capture_sampling_percent = 101: a percentage: 0 to 100"),
    ("capture types", lambda: _endpoint(capture_csv_content_types=(), capture_json_content_types=()),
     "EndpointProps.capture_json_content_types = \\(\\): with no CSV types either, capture would record "
     "every payload as base64"),
    ("no rollback alarms", lambda: _endpoint(rollback_alarm_names=()),
     "EndpointProps.rollback_alarm_names = \\(\\): a blue/green deployment without alarms cannot roll back"),
    ("unnamed group", lambda: ModelSecurityGroupProps(endpoint_name=""),
     "ModelSecurityGroupProps.endpoint_name = '': name the endpoint"),
    ("root role path", lambda: _role(role_path="/"),
     "ServingRoleProps.role_path = '/': .*not '/' alone, which is every role of the account"),
    ("role qualifier", lambda: _role(qualifier="Probe"),
     "ServingRoleProps.qualifier = 'Probe': must be 3-41 lower-case letters"),
    ("artifacts prefix", lambda: _role(model_artifacts_prefix="probe-pipeline"),
     "ServingRoleProps.model_artifacts_prefix = 'probe-pipeline': must be an S3 key prefix"),
    ("role endpoint", lambda: _role(endpoint_name=""),
     "ServingRoleProps.endpoint_name = '': name the endpoint whose log group the role writes"),
    ("inverted bounds", lambda: _scaling(min_instances=5),
     "AutoscalingProps.min_instances = 5: must be at least 1 and at most max_instances \\(4\\)"),
    ("no target", lambda: _scaling(invocations_per_instance=0),
     "AutoscalingProps.invocations_per_instance = 0: the target must be at least 1 per minute"),
    ("cooldown", lambda: _scaling(scale_in_cooldown_seconds=-1),
     "AutoscalingProps.scale_in_cooldown_seconds = -1: a cooldown is 0 seconds or more"),
    ("no alarms", lambda: RollbackAlarmsProps(alarms=()),
     "RollbackAlarmsProps.alarms = \\(\\): a deployment needs at least one rollback alarm"),
    ("alarm twice", lambda: RollbackAlarmsProps(alarms=(ALARMS[0], ALARMS[0])),
     "RollbackAlarmsProps.alarms = .*: names .* repeat; each alarm needs its own name"),
    ("api stage", lambda: _api(stage_name="v-1"),
     "InferenceApiProps.stage_name = 'v-1': letters, digits and '_' only"),
    ("no quota", lambda: _api(quota_per_day=0),
     "InferenceApiProps.quota_per_day = 0: must be positive"),
    ("burst below rate", lambda: _api(throttle_burst=10),
     "InferenceApiProps.throttle_burst = 10: below the rate \\(50/s\\)"),
    ("above sagemaker", lambda: _api(max_payload_bytes=10 * 1024 * 1024),
     "InferenceApiProps.max_payload_bytes = 10485760: above SageMaker's limit \\(6291456 bytes\\)"),
    ("api retention", lambda: _api(log_retention_days=2),
     "InferenceApiProps.log_retention_days = 2: CloudWatch Logs accepts only"),
    ("web acl name", lambda: PayloadLimitProps(name="probe inference", max_payload_bytes=1),
     "PayloadLimitProps.name = 'probe inference': 1-128 letters"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("factory", "message"), [(f, m) for _, f, m in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_invalid_props_fail_with_the_props_field_value_and_fix(
    factory: Callable[[], object], message: str
) -> None:
    with pytest.raises(PropsError, match=f"^{message}"):
        factory()


def test_the_capture_exception_refuses_a_path_that_trusts_every_role() -> None:
    with pytest.raises(ValueError, match=r"role_path = '/': .*not '/' alone"):
        capture_exception("/", "capture/")
    exception = capture_exception("/probe-dev/serving-model/", "capture/")
    assert (exception.buckets, exception.prefix) == (("raw",), "capture/")


# ---------------------------------------------------------------- secure defaults, proven on a template


def _logical_id(construct: IConstruct) -> str:
    resource = construct.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    return cdk.Stack.of(resource).get_logical_id(resource)


def _probe(
    *, endpoint: EndpointProps, volume_key: bool, outdir: Path | None = None
) -> tuple[cdk.App, cdk.Stack, ServingEndpoint]:
    app = cdk.App(outdir=str(outdir) if outdir else None, context=repo_context())
    stack = cdk.Stack(app, "Probe")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    artifacts = kms.Key(stack, "ArtifactsKey", enable_key_rotation=True)
    serving = ServingEndpoint(
        stack,
        "Endpoint",
        props=endpoint,
        condition=cdk.CfnCondition(stack, "Approved", expression=cdk.Fn.condition_equals("a", "a")),
        role=role,
        subnets=vpc.isolated_subnets,
        security_group=ec2.SecurityGroup(stack, "Group", vpc=vpc),
        volume_key=artifacts if volume_key else None,
        capture_bucket=s3.Bucket.from_bucket_name(stack, "Raw", "probe-raw"),
        capture_key=kms.Key(stack, "DataKey", enable_key_rotation=True),
    )
    return app, stack, serving


def test_the_volume_key_is_required_unless_a_reason_says_why_not() -> None:
    with pytest.raises(
        ValueError, match=r"pass the volume key .* unless EndpointProps.instance_storage_reason"
    ):
        _probe(endpoint=_endpoint(), volume_key=False)
    nvme = _endpoint(instance_type="ml.g5.xlarge", instance_storage_reason=NVME_REASON)
    with pytest.raises(ValueError, match="never both"):
        _probe(endpoint=nvme, volume_key=True)
    _, stack, serving = _probe(endpoint=_endpoint(), volume_key=True)
    config = Template.from_stack(stack).to_json()["Resources"][stack.get_logical_id(serving.endpoint_config)]
    assert config["Properties"]["KmsKeyId"] == {
        "Fn::GetAtt": [_logical_id(stack.node.find_child("ArtifactsKey")), "Arn"]
    }
    assert config["Properties"]["DataCaptureConfig"]["DestinationS3Uri"] == "s3://probe-raw/capture"


def test_an_api_keeps_a_year_of_logs_and_refuses_what_sagemaker_refuses_by_default() -> None:
    props = _api()
    assert props.log_retention_days == DEFAULT_RETENTION_DAYS == 365
    assert props.max_payload_bytes == invoke_endpoint_payload_limit() == 6 * 1024 * 1024
    stack = cdk.Stack(cdk.App(context=repo_context()), "Api")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    api = InferenceApi(
        stack,
        "Api",
        props=props,
        vpc_endpoint=vpc.add_interface_endpoint(
            "ExecuteApi", service=ec2.InterfaceVpcEndpointAwsService.APIGATEWAY
        ),
        logs_key=kms.Key(stack, "LogsKey", enable_key_rotation=True),
    )
    template = Template.from_stack(stack).to_json()["Resources"]
    for group in (api.access_log_group, api.execution_log_group, api.firewall.log_group):
        assert template[_logical_id(group)]["Properties"]["RetentionInDays"] == 365
    [rule] = template[stack.get_logical_id(api.firewall.web_acl)]["Properties"]["Rules"]
    assert rule["Statement"]["RegexMatchStatement"]["RegexString"] == greater_than_pattern(6 * 1024 * 1024)


# ---------------------------------------------------------------- pure pieces


def test_traffic_routing_for_each_policy() -> None:
    assert traffic_routing(DeploymentPolicy(traffic="canary", canary_instances=2, wait_seconds=600)) == {
        "Type": "CANARY",
        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 2},
        "WaitIntervalInSeconds": 600,
    }
    assert traffic_routing(DeploymentPolicy(traffic="linear", linear_step_instances=3, wait_seconds=120)) == {
        "Type": "LINEAR",
        "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 3},
        "WaitIntervalInSeconds": 120,
    }
    assert traffic_routing(DeploymentPolicy(traffic="all_at_once", wait_seconds=60)) == {
        "Type": "ALL_AT_ONCE",
        "WaitIntervalInSeconds": 60,
    }
    config = deployment_config(DeploymentPolicy(traffic="all_at_once"), ["a", "b"])
    assert config["AutoRollbackConfiguration"] == {"Alarms": [{"AlarmName": "a"}, {"AlarmName": "b"}]}


def _answer(status: int) -> list[int]:
    """The API statuses whose selection pattern matches SageMaker's ``status`` (API Gateway: whole match)."""
    return [e.status for e in ERROR_RESPONSES if re.fullmatch(e.pattern, str(status))]


def test_every_sagemaker_status_has_at_most_one_answer_and_2xx_passes_through() -> None:
    for status in range(100, 600):
        assert len(_answer(status)) <= 1, status
        assert (_answer(status) == []) == (status < 400), status


@pytest.mark.parametrize(
    ("sagemaker", "client"),
    [
        (400, 400),
        (413, 413),
        (429, 429),
        (424, 502),
        (401, 502),
        (403, 502),
        (404, 502),
        (500, 502),
        (503, 502),
    ],
)
def test_the_answer_table(sagemaker: int, client: int) -> None:
    # 424 is the model's error: a 4xx of the model overrides the 502 at run time (template).
    assert _answer(sagemaker) == [client]


@given(limit=st.integers(min_value=0, max_value=10**9), value=st.integers(min_value=0, max_value=10**11))
def test_the_size_pattern_matches_exactly_the_values_above_the_limit(limit: int, value: int) -> None:
    pattern = greater_than_pattern(limit)
    assert bool(re.fullmatch(pattern, str(value))) == (value > limit)
    assert bool(re.fullmatch(pattern, "00" + str(value))) == (value > limit)


def test_the_size_pattern_refuses_non_numbers() -> None:
    pattern = greater_than_pattern(6291456)
    for text in ("", "-7000000", "7e6", "6291457 ", "abc"):
        assert not re.fullmatch(pattern, text), text
    with pytest.raises(ValueError, match="must not be negative"):
        greater_than_pattern(-1)


# ---------------------------------------------------------------- instance storage (no shipped stage uses it)


def test_an_instance_storage_config_names_no_key_and_says_why_where_packs_flag_it(tmp_path: Path) -> None:
    nvme = _endpoint(instance_type="ml.g5.xlarge", instance_storage_reason=NVME_REASON)
    app, stack, endpoint = _probe(endpoint=nvme, volume_key=False, outdir=tmp_path)
    register_audit(app)
    assembly = read_assembly(synthesize(app))
    config_path = endpoint.endpoint_config.node.path
    template = assembly.stack("Probe").template
    config = template["Resources"][stack.get_logical_id(endpoint.endpoint_config)]
    assert "KmsKeyId" not in config["Properties"]
    assert config["Properties"]["DataCaptureConfig"]["KmsKeyId"]  # capture stays encrypted
    assert config["Metadata"][VOLUME_ENCRYPTION_METADATA] == {
        "mode": "instance-storage",
        "reason": NVME_REASON,
    }
    accepted = {s.rule_id: s.reason for s in assembly.suppressed if s.acknowledged_at == config_path}
    assert set(accepted) == {"Rookery-H1", "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured"}
    assert all(NVME_REASON in reason for reason in accepted.values())
    # Only findings of the probe's bare VPC and role remain; none on the endpoint and no stale acknowledgment.
    result = evaluate(assembly)
    # The probe is the endpoint alone (no model security group, no rollback alarms: the Serving stack's
    # own tests prove those rules); what it checks is that no volume-key rule (H1) faults the key-less
    # volume.
    assert not [
        v
        for v in result.violations
        if v.construct_path.startswith(endpoint.node.path) and v.rule_id.startswith("Rookery-H1")
    ]
    assert not [p for p in result.problems if config_path in p]

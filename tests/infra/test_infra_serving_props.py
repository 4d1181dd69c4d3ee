"""The Serving constructs on their own: props refuse invalid combinations naming field, value and fix;
the pure pieces (traffic routing, the answer table, the size pattern) and the instance-storage path,
which no shipped stage uses, built in small probe apps."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.constructs.endpoint import (
    VOLUME_ENCRYPTION_METADATA,
    EndpointProps,
    deployment_config,
    traffic_routing,
)
from infra.constructs.endpoint_alarms import RollbackAlarmsProps
from infra.constructs.endpoint_scaling import AutoscalingProps
from infra.constructs.inference_api import ERROR_RESPONSES, InferenceApiProps, greater_than_pattern
from infra.constructs.serving_role import ServingRoleProps
from stage import load_stage
from stage.alarms import rollback_alarms
from stage.serving import DeploymentPolicy
from stage.toolchain import use_venv_node

use_venv_node()  # before aws_cdk is imported: jsii must start the venv's Node

import aws_cdk as cdk  # noqa: E402
from aws_cdk import aws_ec2 as ec2  # noqa: E402
from aws_cdk import aws_iam as iam  # noqa: E402

from infra.app import register_audit, repo_context, synthesize  # noqa: E402
from infra.audit.assembly import read_assembly  # noqa: E402
from infra.audit.gate import evaluate  # noqa: E402
from infra.constructs.endpoint import ServingEndpoint  # noqa: E402

ENDPOINT: dict[str, Any] = {
    "endpoint_name": "rookery-dev-endpoint",
    "variant_name": "primary",
    "instance_type": "ml.c5.large",
    "initial_instance_count": 2,
    "volume_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "capture_destination": "s3://raw/capture",
    "capture_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/5678abcd-12ab-34cd-56ef-1234567890ab",
    "capture_sampling_percent": 100,
    "capture_csv_content_types": ("text/csv",),
    "capture_json_content_types": ("application/json",),
    "deployment": DeploymentPolicy(),
    "rollback_alarm_names": ("errors",),
}
API: dict[str, Any] = {
    "api_name": "rookery-dev-inference",
    "stage_name": "v1",
    "endpoint_name": "rookery-dev-endpoint",
    "throttle_rate_per_second": 50,
    "throttle_burst": 100,
    "quota_per_day": 1000,
    "max_payload_bytes": 6291456,
    "log_retention_days": 30,
}
NVME_REASON = "ml.g5.xlarge keeps the model on local NVMe instance storage encrypted by the instance"


# ---------------------------------------------------------------- props refuse what cannot work


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"volume_kms_key_arn": None},
            r"volume_kms_key_arn = None: give a KMS key .* never both, never neither",
        ),
        (
            {"instance_storage_reason": NVME_REASON},
            r"volume_kms_key_arn = 'arn:aws:kms:.*': give a KMS key for the storage volume, or",
        ),
        ({"initial_instance_count": 0}, r"initial_instance_count = 0: at least 1"),
        ({"capture_sampling_percent": 101}, r"capture_sampling_percent = 101: 0 to 100"),
        (
            {"capture_destination": "s3://raw/capture/"},
            r"capture_destination = 's3://raw/capture/': an S3 URI",
        ),
        ({"capture_destination": "raw/capture"}, r"capture_destination = 'raw/capture'"),
        (
            {"capture_csv_content_types": (), "capture_json_content_types": ()},
            r"are both empty: list the content types the image serves",
        ),
        (
            {"rollback_alarm_names": ()},
            r"rollback_alarm_names = \(\): a blue/green deployment without alarms",
        ),
    ],
)
def test_endpoint_props_refuse_invalid_settings(change: dict[str, Any], message: str) -> None:
    with pytest.raises(
        ValueError, match=rf"EndpointProps\.{message}" if "both empty" not in message else message
    ):
        EndpointProps(**{**ENDPOINT, **change})


def test_endpoint_props_accept_instance_storage_only_with_a_reason() -> None:
    props = EndpointProps(**{**ENDPOINT, "volume_kms_key_arn": None, "instance_storage_reason": NVME_REASON})
    assert props.volume_kms_key_arn is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"path": "rookery-dev/serving-model"},
            r"ServingRoleProps\.path = 'rookery-dev/serving-model': an IAM path",
        ),
        ({"path": "/"}, r"ServingRoleProps\.path = '/'"),
        ({"endpoint_name": ""}, r"ServingRoleProps\.endpoint_name = ''"),
        (
            {"capture_prefix": "/capture/"},
            r"ServingRoleProps\.capture_prefix = '/capture/': must be an S3 key prefix",
        ),
        ({"model_artifacts_prefix": "pipeline"}, r"ServingRoleProps\.model_artifacts_prefix = 'pipeline'"),
    ],
)
def test_role_props_refuse_invalid_paths_and_prefixes(change: dict[str, Any], message: str) -> None:
    good = {
        "qualifier": "rookery-dev",
        "path": "/rookery-dev/serving-model/",
        "endpoint_name": "rookery-dev-endpoint",
        "model_artifacts_prefix": "rookery-dev-pipeline/",
        "capture_prefix": "capture/",
    }
    with pytest.raises(ValueError, match=message):
        ServingRoleProps(**{**good, **change})


def test_autoscaling_props_refuse_inverted_bounds_and_a_zero_target() -> None:
    good: dict[str, Any] = {
        "endpoint_name": "e",
        "variant_name": "primary",
        "min_instances": 2,
        "max_instances": 4,
        "invocations_per_instance": 600,
        "scale_in_cooldown_seconds": 300,
        "scale_out_cooldown_seconds": 60,
    }
    with pytest.raises(ValueError, match=r"AutoscalingProps\.min_instances = 5: .* max_instances \(4\)"):
        AutoscalingProps(**{**good, "min_instances": 5})
    with pytest.raises(ValueError, match=r"AutoscalingProps\.invocations_per_instance = 0: at least 1"):
        AutoscalingProps(**{**good, "invocations_per_instance": 0})


def test_alarm_props_need_distinct_alarms() -> None:
    alarms = rollback_alarms(load_stage("dev"))
    with pytest.raises(ValueError, match=r"RollbackAlarmsProps\.alarms = \(\): a deployment needs"):
        RollbackAlarmsProps(alarms=())
    with pytest.raises(ValueError, match=r"names .* repeat; each alarm needs its own"):
        RollbackAlarmsProps(alarms=(alarms[0], alarms[0]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stage_name": "v-1"}, r"stage_name = 'v-1': letters, digits and '_' only"),
        ({"quota_per_day": 0}, r"quota_per_day = 0: must be positive"),
        ({"max_payload_bytes": 0}, r"max_payload_bytes = 0: must be positive"),
        ({"throttle_burst": 10}, r"throttle_burst = 10: below the rate \(50/s\)"),
    ],
)
def test_api_props_refuse_missing_limits(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=rf"InferenceApiProps\.{message}"):
        InferenceApiProps(**{**API, **change})


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
    app = cdk.App(outdir=str(tmp_path), context=repo_context())
    stack = cdk.Stack(app, "Probe")
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=0)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    condition = cdk.CfnCondition(stack, "Approved", expression=cdk.Fn.condition_equals("a", "a"))
    endpoint = ServingEndpoint(
        stack,
        "Endpoint",
        props=EndpointProps(
            **{**ENDPOINT, "instance_type": "ml.g5.xlarge", "volume_kms_key_arn": None},
            instance_storage_reason=NVME_REASON,
        ),
        condition=condition,
        model_package="arn:aws:sagemaker:eu-west-1:123456789012:model-package/rookery-dev-models/1",
        role=role,
        subnet_ids=vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
        security_group=ec2.SecurityGroup(stack, "Group", vpc=vpc),
    )
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
    assert not [v for v in result.violations if v.construct_path.startswith(endpoint.node.path)]
    assert not [p for p in result.problems if config_path in p]

"""Controls H1-H5 and D1b's capture exception on the synthesized ``Rookery-<stage>-Serving`` of every stage.

Every value is read from the template; expectations come from the stage config and the construct
objects, never from hard-coded logical ids. The private API is tested in ``test_infra_serving_api.py``.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from infra_testing import Synth, arn_of, ref, resources

from infra import app as app_module
from infra.audit import facts
from infra.audit.rules import GUARDRAIL_KEYS
from infra.audit.template import condition_keys, flatten
from infra.stacks.serving import ServingStack
from pipelines.contract import INFERENCE_CONTENT_TYPES
from stage import STAGES_DIR, parse_stage
from stage.capture import CSV_CONTENT_TYPES, JSON_CONTENT_TYPES
from stage.names import (
    APPROVED_MODEL_PARAMETER,
    VARIANT_NAME,
    alarm_names,
    bucket_name,
    endpoint_name,
    model_package_group_name,
    pipeline_name,
    serving_role_path,
)
from stage.paths import CDK_JSON
from stage.serving import PROVISIONING_ALLOWANCE_SECONDS
from stage.toolchain import use_venv_node

use_venv_node()  # before aws_cdk is imported: jsii must start the venv's Node

import aws_cdk as cdk  # noqa: E402

CONDITION = "HasApprovedModel"
ENDPOINT_SIDE = {
    "AWS::SageMaker::Model": 1,
    "AWS::SageMaker::EndpointConfig": 1,
    "AWS::SageMaker::Endpoint": 1,
    "AWS::CloudWatch::Alarm": 3,
    "AWS::ApplicationAutoScaling::ScalableTarget": 1,
    "AWS::ApplicationAutoScaling::ScalingPolicy": 1,
}


def _serving(synth: Synth) -> ServingStack:
    assert synth.stacks.serving is not None
    return synth.stacks.serving


def _env(synth: Synth) -> tuple[str, str, str]:
    """Partition, region and account as they read in the template (literals only for a pinned stage)."""
    if synth.stage.account:
        return "aws", synth.stage.region, synth.stage.account
    return "<AWS::Partition>", "<AWS::Region>", "<AWS::AccountId>"


def _bucket(synth: Synth, purpose: str) -> str:
    _, region, account = _env(synth)
    return bucket_name(synth.stage, purpose, account=account, region=region)


def _references(value: Any) -> Iterator[str]:
    """Every logical id a value points at (Ref, Fn::GetAtt), however deep."""
    if isinstance(value, Mapping):
        if "Ref" in value and isinstance(value["Ref"], str):
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            yield value["Fn::GetAtt"][0]
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


def _output_of(value: Any, stack: str) -> str:
    """The output name of a weak cross-stack reference to ``stack``."""
    output = value["Fn::GetStackOutput"]
    assert output["StackName"] == stack
    return str(output["OutputName"])


def _statements(synth: Synth, role: Any) -> dict[str, dict[str, Any]]:
    return {
        s["Sid"]: s
        for p in resources(synth.serving, "AWS::IAM::Policy").values()
        if ref(synth.logical_id(role)) in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    }


def _rollback_alarms(synth: Synth) -> dict[str, Mapping[str, Any]]:
    """The endpoint's rollback alarms (the stack's other alarms watch its monitoring jobs)."""
    ids = {synth.logical_id(a) for a in _serving(synth).alarms.alarms.values()}
    return {k: v for k, v in resources(synth.serving, "AWS::CloudWatch::Alarm").items() if k in ids}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


pytestmark = pytest.mark.xdist_group("infra-synth")


# ---------------------------------------------------------------- the stack, its parameter and condition


def test_the_app_builds_the_serving_stack_and_the_audit_gates_see_it(any_synth: Synth) -> None:
    names = {s.name for s in any_synth.assembly.stacks}
    assert names == {any_synth.stage.stack_name(c) for c in ("Network", "Data", "ML", "Serving")}
    assert any_synth.assembly.stack(any_synth.stage.stack_name("Serving")).template_path.is_file()


def test_the_approved_version_is_a_parameter_empty_by_default(synth: Synth) -> None:
    parameter = synth.serving["Parameters"][APPROVED_MODEL_PARAMETER]
    assert (parameter["Type"], parameter["Default"]) == ("String", "")
    pattern = re.compile(parameter["AllowedPattern"])
    group = model_package_group_name(synth.stage)
    account = synth.stage.account or "123456789012"
    version = f"arn:aws:sagemaker:{synth.stage.region}:{account}:model-package/{group}"
    assert pattern.fullmatch("")
    assert pattern.fullmatch(f"{version}/3") and pattern.fullmatch(f"{version}/12")
    for wrong in (
        version,  # unversioned
        f"{version}/latest",
        f"arn:aws:sagemaker:{synth.stage.region}:{account}:model-package/other-models/3",
        f"arn:aws:sagemaker:{synth.stage.region}:{account}:model-package-group/{group}",
        f" {version}/3",
    ):
        assert not pattern.fullmatch(wrong), wrong
    if synth.stage.account:  # a pinned stage names its own account and region
        assert not pattern.fullmatch(f"{version}/3".replace(account, "210987654321"))
        assert not pattern.fullmatch(f"{version}/3".replace(synth.stage.region, "us-east-1"))


def test_the_condition_is_a_non_empty_parameter(synth: Synth) -> None:
    assert synth.serving["Conditions"][CONDITION] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": APPROVED_MODEL_PARAMETER}, ""]}]
    }


def test_every_endpoint_side_resource_exists_only_with_an_approved_version(synth: Synth) -> None:
    template = synth.serving["Resources"]
    conditional = {k for k, r in template.items() if r.get("Condition") == CONDITION}
    # Monitoring has a condition of its own (an approved version and its baseline), tested in
    # test_infra_monitoring.py.
    monitoring = {k for k, r in template.items() if r.get("Condition") == "HasMonitoringBaseline"}
    endpoint_side = {k for k, r in template.items() if r["Type"] in ENDPOINT_SIDE} - monitoring
    assert conditional == endpoint_side
    assert {
        t: sum(1 for k in conditional if template[k]["Type"] == t) for t in ENDPOINT_SIDE
    } == ENDPOINT_SIDE
    # Day one (empty parameter): nothing that stays may point at what the condition leaves out.
    for logical_id, resource in template.items():
        if logical_id not in conditional:
            assert not set(_references(resource)) & conditional, logical_id
    assert "Outputs" not in synth.serving or not set(_references(synth.serving["Outputs"])) & conditional


# ---------------------------------------------------------------- the model (H2)


def test_the_model_is_the_approved_package_network_isolated_in_the_private_subnets(synth: Synth) -> None:
    serving = _serving(synth)
    model = synth.props(serving.endpoint.model)
    assert model["PrimaryContainer"] == {"ModelPackageName": {"Ref": APPROVED_MODEL_PARAMETER}}
    assert model["EnableNetworkIsolation"] is True
    assert model["ExecutionRoleArn"] == arn_of(synth.logical_id(serving.model_role.role))
    vpc = model["VpcConfig"]
    assert vpc["SecurityGroupIds"] == [
        {"Fn::GetAtt": [synth.logical_id(serving.model_network.security_group), "GroupId"]}
    ]
    network = synth.stacks.network.network
    subnets = [synth.logical_id(s) for s in network.vpc.isolated_subnets]
    assert len(subnets) == len(vpc["Subnets"]) == synth.stage.max_azs
    outputs = [_output_of(s, synth.stage.stack_name("Network")) for s in vpc["Subnets"]]
    assert all(subnet in output for subnet, output in zip(subnets, outputs, strict=True))


def test_the_models_security_group_admits_nothing_and_leaves_only_on_443(synth: Synth) -> None:
    serving = _serving(synth)
    group = synth.logical_id(serving.model_network.security_group)
    assert "SecurityGroupIngress" not in synth.props(serving.model_network.security_group)
    for stack in synth.assembly.stacks:
        for rule in resources(stack.template, "AWS::EC2::SecurityGroupIngress").values():
            assert group not in set(_references(rule["Properties"]["GroupId"])), stack.name
    assert synth.props(serving.model_network.security_group)["SecurityGroupEgress"] == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to S3 via the gateway endpoint (the only route out)",
            "FromPort": 443,
            "IpProtocol": "tcp",
            "ToPort": 443,
        }
    ]
    endpoints = synth.logical_id(synth.stacks.network.network.endpoint_security_group)
    [egress] = [
        r["Properties"]
        for r in resources(synth.serving, "AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    ]
    assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    assert endpoints in _output_of(egress["DestinationSecurityGroupId"], synth.stage.stack_name("Network"))


def test_the_interface_endpoints_admit_the_model_on_443_from_the_serving_stack(synth: Synth) -> None:
    serving = _serving(synth)
    endpoints = synth.logical_id(synth.stacks.network.network.endpoint_security_group)
    [ingress] = resources(synth.serving, "AWS::EC2::SecurityGroupIngress").values()
    rule = ingress["Properties"]
    assert endpoints in _output_of(rule["GroupId"], synth.stage.stack_name("Network"))
    assert rule["SourceSecurityGroupId"] == {
        "Fn::GetAtt": [synth.logical_id(serving.model_network.security_group), "GroupId"]
    }
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443)


def test_the_model_role_is_sagemakers_under_the_serving_path_inside_the_boundary(synth: Synth) -> None:
    serving = _serving(synth)
    role = synth.props(serving.model_role.role)
    assert role["Path"] == serving_role_path(synth.stage)
    assert role["PermissionsBoundary"] == ref(synth.logical_id(serving.guardrails.policy))
    assert "ManagedPolicyArns" not in role
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"


def test_the_boundary_is_the_stages_sagemaker_guardrails_with_the_models_network(synth: Synth) -> None:
    serving = _serving(synth)
    boundary = synth.props(serving.guardrails.policy)["PolicyDocument"]["Statement"]
    ml_boundary = synth.props(synth.stacks.ml.guardrails.policy)["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in boundary] == [s["Sid"] for s in ml_boundary]  # the same rules
    denied = {k for s in boundary if s["Effect"] == "Deny" for k in condition_keys(s)}
    assert denied >= GUARDRAIL_KEYS
    [groups] = [s for s in boundary if s["Sid"] == "DenySecurityGroupsOther"]
    assert groups["Condition"]["ForAnyValue:StringNotEquals"]["sagemaker:VpcSecurityGroupIds"] == [
        {"Fn::GetAtt": [synth.logical_id(serving.model_network.security_group), "GroupId"]}
    ]


def test_the_model_role_may_do_exactly_this(synth: Synth) -> None:
    serving = _serving(synth)
    partition, region, account = _env(synth)
    data = synth.stage.stack_name("Data")
    keys = synth.stacks.data.keys
    statements = _statements(synth, serving.model_role.role)
    endpoint_logs = f"/aws/sagemaker/Endpoints/{endpoint_name(synth.stage)}"
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:{endpoint_logs}"
    expected: dict[str, tuple[list[str], str]] = {
        "PullProjectImage": (
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "container-assets-",
        ),
        "RegistryLogin": (["ecr:GetAuthorizationToken"], "*"),
        "ReadModelArtifacts": (
            ["s3:GetObject"],
            f"arn:{partition}:s3:::{_bucket(synth, 'artifacts')}/{pipeline_name(synth.stage)}/*",
        ),
        "DecryptModelArtifacts": (["kms:Decrypt"], "artifacts-key"),
        "WriteDataCapture": (["s3:PutObject"], f"arn:{partition}:s3:::{_bucket(synth, 'raw')}/capture/*"),
        "EncryptDataCapture": (["kms:GenerateDataKey"], "data-key"),
        "EndpointLogGroup": (["logs:CreateLogGroup", "logs:DescribeLogStreams"], log_group),
        "EndpointLogStreams": (["logs:CreateLogStream", "logs:PutLogEvents"], f"{log_group}:log-stream:*"),
        "EndpointMetrics": (["cloudwatch:PutMetricData"], "*"),
        "ModelNetworkInterfacesInStageVpc": (
            [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            "*",
        ),
        "DescribeModelNetwork": (
            [
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            ],
            "*",
        ),
    }
    assert set(statements) == set(expected)
    for sid, (actions, resource) in expected.items():
        statement = statements[sid]
        assert statement["Effect"] == "Allow"
        assert sorted(_as_list(statement["Action"])) == actions, sid
        if resource == "artifacts-key":
            assert synth.logical_id(keys.artifacts) in _output_of(statement["Resource"], data)
        elif resource == "data-key":
            assert synth.logical_id(keys.data) in _output_of(statement["Resource"], data)
        elif resource == "container-assets-":
            text = flatten(statement["Resource"])
            assert text.startswith(f"arn:{partition}:ecr:{region}:{account}:repository/cdk-")
            assert "-container-assets-" in text
        else:
            assert flatten(statement["Resource"]) == resource, sid
    # Keys are used by S3 on the role's behalf only; metrics stay in SageMaker's namespaces.
    for sid in ("DecryptModelArtifacts", "EncryptDataCapture"):
        via = flatten(statements[sid]["Condition"]["StringEquals"]["kms:ViaService"])
        assert via.startswith("s3.")
    assert statements["EndpointMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}
    }
    assert set(statements["ModelNetworkInterfacesInStageVpc"]["Condition"]["ArnEquals"]) == {"ec2:Vpc"}


# ---------------------------------------------------------------- the endpoint config (H1, H4)


def test_one_production_variant_sized_by_the_stage(synth: Synth) -> None:
    serving = _serving(synth)
    [variant] = synth.props(serving.endpoint.endpoint_config)["ProductionVariants"]
    assert variant == {
        "VariantName": VARIANT_NAME,
        "ModelName": {"Fn::GetAtt": [synth.logical_id(serving.endpoint.model), "ModelName"]},
        "InitialInstanceCount": synth.stage.serving.initial_instance_count,
        "InstanceType": synth.stage.serving.instance_type,
        "InitialVariantWeight": 1,
    }


def test_the_endpoint_volume_is_encrypted_with_the_artifacts_key(synth: Synth) -> None:
    serving = _serving(synth)
    assert synth.stage.serving.volume_encryption == "kms"
    config = synth.resource(serving.endpoint.endpoint_config)
    key = _output_of(config["Properties"]["KmsKeyId"], synth.stage.stack_name("Data"))
    assert synth.logical_id(synth.stacks.data.keys.artifacts) in key
    assert "rookery:volume-encryption" not in config.get("Metadata", {})


def test_data_capture_records_input_and_output_under_the_capture_prefix_with_the_data_key(
    synth: Synth,
) -> None:
    serving = _serving(synth)
    capture = synth.props(serving.endpoint.endpoint_config)["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    assert capture["InitialSamplingPercentage"] == synth.stage.serving.capture_sampling_percent
    assert flatten(capture["DestinationS3Uri"]) == f"s3://{_bucket(synth, 'raw')}/capture"
    key = _output_of(capture["KmsKeyId"], synth.stage.stack_name("Data"))
    assert synth.logical_id(synth.stacks.data.keys.data) in key
    # The content types the image serves, recorded as text (CSV and JSON), not base64.
    assert capture["CaptureContentTypeHeader"] == {
        "CsvContentTypes": ["text/csv"],
        "JsonContentTypes": ["application/json", "application/jsonlines"],
    }
    # Every content type the image serves is captured as text.
    assert set(CSV_CONTENT_TYPES + JSON_CONTENT_TYPES) == set(INFERENCE_CONTENT_TYPES)


def test_prod_runs_at_least_two_instances_and_captures_a_sample(prod: Synth) -> None:
    serving = _serving(prod)
    [variant] = prod.props(serving.endpoint.endpoint_config)["ProductionVariants"]
    assert variant["InitialInstanceCount"] >= 2
    assert prod.props(serving.autoscaling.target)["MinCapacity"] >= 2
    sampling = prod.props(serving.endpoint.endpoint_config)["DataCaptureConfig"]["InitialSamplingPercentage"]
    assert 0 < sampling < 100


# ---------------------------------------------------------------- the endpoint and its deployment (H5)


def test_the_endpoint_has_its_stable_name_and_the_config(synth: Synth) -> None:
    serving = _serving(synth)
    endpoint = synth.props(serving.endpoint.endpoint)
    assert endpoint["EndpointName"] == endpoint_name(synth.stage)
    assert endpoint["EndpointConfigName"] == {
        "Fn::GetAtt": [synth.logical_id(serving.endpoint.endpoint_config), "EndpointConfigName"]
    }


def test_the_deployment_is_blue_green_with_the_stages_policy_and_rollback_alarms(synth: Synth) -> None:
    serving = _serving(synth)
    policy = synth.stage.serving.deployment
    assert policy.traffic == "canary"  # both shipped stages; linear and all-at-once: test_infra_serving_props
    names = alarm_names(synth.stage)
    assert synth.props(serving.endpoint.endpoint)["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": policy.canary_instances},
                "WaitIntervalInSeconds": policy.wait_seconds,
            },
            "TerminationWaitInSeconds": policy.termination_wait_seconds,
            "MaximumExecutionTimeoutInSeconds": policy.maximum_execution_timeout_seconds,
        },
        "AutoRollbackConfiguration": {
            "Alarms": [
                {"AlarmName": names["errors"]},
                {"AlarmName": names["model_latency"]},
                {"AlarmName": names["overhead_latency"]},
            ]
        },
    }
    # Larger than provisioning plus the bake after each of the canary's two steps and the termination wait.
    waits = 2 * policy.wait_seconds + policy.termination_wait_seconds
    assert policy.maximum_execution_timeout_seconds > PROVISIONING_ALLOWANCE_SECONDS + waits


def test_the_rollback_alarms_named_in_the_config_exist_before_the_endpoint(synth: Synth) -> None:
    serving = _serving(synth)
    endpoint = synth.resource(serving.endpoint.endpoint)
    alarms = _rollback_alarms(synth)
    listed = [
        a["AlarmName"]
        for a in endpoint["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    ]
    assert sorted(listed) == sorted(a["Properties"]["AlarmName"] for a in alarms.values())
    assert set(endpoint["DependsOn"]) >= set(alarms)


def test_model_swaps_keep_the_autoscaled_count_but_not_data_capture(synth: Synth) -> None:
    endpoint = synth.props(_serving(synth).endpoint.endpoint)
    assert endpoint["RetainAllVariantProperties"] is True
    assert endpoint["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DataCaptureConfig"}]


def test_the_alarms_watch_rates_and_microseconds_of_the_endpoints_variant(synth: Synth) -> None:
    settings = synth.stage.serving.alarms
    names = alarm_names(synth.stage)
    by_name = {a["Properties"]["AlarmName"]: a["Properties"] for a in _rollback_alarms(synth).values()}
    expected = {
        names["errors"]: ("Invocation5XXErrors", "Statistic", "Average", settings.error_rate),
        names["model_latency"]: (
            "ModelLatency",
            "ExtendedStatistic",
            "p99",
            settings.model_latency_p99_ms * 1000,
        ),
        names["overhead_latency"]: (
            "OverheadLatency",
            "ExtendedStatistic",
            "p99",
            settings.overhead_latency_p99_ms * 1000,
        ),
    }
    assert set(by_name) == set(expected)
    for name, (metric, kind, statistic, threshold) in expected.items():
        alarm = by_name[name]
        assert alarm["MetricName"] == metric
        assert alarm[kind] == statistic
        assert ({"Statistic", "ExtendedStatistic"} - {kind}).isdisjoint(alarm)
        assert alarm["Threshold"] == threshold
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert alarm["Dimensions"] == [
            {"Name": "EndpointName", "Value": endpoint_name(synth.stage)},
            {"Name": "VariantName", "Value": VARIANT_NAME},
        ]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (
            settings.period_seconds,
            settings.evaluation_periods,
            settings.datapoints_to_alarm,
        )


# ---------------------------------------------------------------- autoscaling (H4)


def test_the_variant_scales_on_invocations_per_instance_within_the_stages_bounds(synth: Synth) -> None:
    serving = _serving(synth)
    settings = synth.stage.serving
    target = synth.resource(serving.autoscaling.target)
    assert target["Properties"] == {
        "ServiceNamespace": "sagemaker",
        "ResourceId": f"endpoint/{endpoint_name(synth.stage)}/variant/{VARIANT_NAME}",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "MinCapacity": settings.min_instances,
        "MaxCapacity": settings.max_instances,
        "Tags": target["Properties"]["Tags"],
    }  # no RoleARN: Application Auto Scaling's service-linked role for SageMaker
    assert synth.logical_id(serving.endpoint.endpoint) in target["DependsOn"]
    policy = synth.props(serving.autoscaling.policy)
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["ScalingTargetId"] == ref(synth.logical_id(serving.autoscaling.target))
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "TargetValue": settings.invocations_per_instance,
        "ScaleInCooldown": settings.scale_in_cooldown_seconds,
        "ScaleOutCooldown": settings.scale_out_cooldown_seconds,
    }


# ---------------------------------------------------------------- D1b: the capture exception


def _raw_policy(synth: Synth) -> Mapping[str, Any]:
    raw = synth.stacks.data.lake.buckets["raw"]
    assert raw.policy is not None
    return synth.resource(raw.policy)


def test_capture_may_skip_the_vpc_endpoint_only_under_the_capture_prefix(synth: Synth) -> None:
    policy = _raw_policy(synth)
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "Sid" in s}
    path_pattern = {
        "Fn::Sub": f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{serving_role_path(synth.stage)}*"
    }
    main = statements["DenyOutsideProjectVpcEndpoint"]
    assert path_pattern in main["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    limit = statements["DenyOutsideCapturePrefixWithoutVpcEndpoint"]
    raw = synth.logical_id(synth.stacks.data.lake.buckets["raw"])
    assert (limit["Effect"], limit["Principal"], limit["Action"]) == ("Deny", {"AWS": "*"}, "s3:*")
    assert limit["NotResource"] == {"Fn::Join": ["", [arn_of(raw), "/capture/*"]]}
    assert "Resource" not in limit
    assert limit["Condition"]["ArnLike"] == {"aws:PrincipalArn": [path_pattern]}
    assert limit["Condition"]["StringNotEquals"] == main["Condition"]["StringNotEquals"]  # the S3 endpoint


def test_only_the_raw_bucket_carries_the_capture_exception(synth: Synth) -> None:
    for purpose, bucket in synth.stacks.data.lake.buckets.items():
        assert bucket.policy is not None
        text = str(synth.resource(bucket.policy))
        assert ("serving-model" in text) == (purpose == "raw"), purpose


def test_the_capture_exception_carries_its_reason_and_prefix_into_the_register(synth: Synth) -> None:
    policy = _raw_policy(synth)
    deny = next(
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "DenyOutsideProjectVpcEndpoint"
    )
    principals = deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    reasons = policy["Metadata"]["rookery:vpc-endpoint-exceptions"]
    [index] = [i for i, p in enumerate(principals) if "serving-model" in str(p)]
    assert "data-capture" in reasons[index] and "SageMaker service network" in reasons[index]
    assert "limited to objects under capture/" in reasons[index]
    register = {e["bucket"]: e for e in facts.bucket_exceptions(synth.data)}
    raw = synth.logical_id(synth.stacks.data.lake.buckets["raw"])
    printed = [e["reason"] for e in register[raw]["exceptions"] if "serving-model" in e["principal"]]
    assert printed == [reasons[index]]


# ---------------------------------------------------------------- the Network stack's execute-api endpoint


def test_the_network_has_a_private_execute_api_endpoint_for_this_accounts_apis(synth: Synth) -> None:
    network = synth.stacks.network.network
    endpoint = synth.props(network.interface_endpoints["execute-api"])
    region = synth.stage.region if synth.stage.account else "<AWS::Region>"
    assert flatten(endpoint["ServiceName"]) == f"com.amazonaws.{region}.execute-api"
    assert endpoint["PrivateDnsEnabled"] is True
    assert endpoint["SecurityGroupIds"] == [
        {"Fn::GetAtt": [synth.logical_id(network.endpoint_security_group), "GroupId"]}
    ]
    [statement] = endpoint["PolicyDocument"]["Statement"]
    _, region, account = _env(synth)
    assert statement["Action"] == "execute-api:Invoke"
    # The Network stack writes every endpoint policy with the partition as a pseudo parameter.
    assert flatten(statement["Resource"]) == f"arn:<AWS::Partition>:execute-api:{region}:{account}:*"
    assert flatten(statement["Condition"]["StringEquals"]["aws:PrincipalAccount"]) in (
        account,
        "<AWS::AccountId>",
    )


# ---------------------------------------------------------------- synthesis refuses bad serving settings


def test_synth_of_a_stage_with_bad_serving_settings_exits_2_naming_field_value_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = tmp_path / "stages"
    stages.mkdir()
    dev = (STAGES_DIR / "dev.toml").read_text(encoding="utf-8")
    (stages / "canary.toml").write_text(
        dev.replace("canary_instances = 1", "canary_instances = 2"), encoding="utf-8"
    )
    monkeypatch.setattr(app_module, "load_stage", functools.partial(app_module.load_stage, stages_dir=stages))
    context = {**json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"], "stage": "canary"}
    assert app_module.main(context=context, outdir=tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.startswith("rookery: stage 'canary'")
    assert "deployment.canary_instances = 2 is more than half of min_instances (2)" in err
    assert "raise min_instances to 4 or lower the canary" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_the_serving_stack_is_deployed_after_the_ml_stack(synth: Synth) -> None:
    dependencies = {d.node.id for d in _serving(synth).dependencies}
    assert {synth.stage.stack_name(c) for c in ("Network", "Data", "ML")} <= dependencies


def test_a_stage_that_does_not_serve_builds_no_serving_stack_and_no_capture_exception(tmp_path: Path) -> None:
    text = (
        (STAGES_DIR / "dev.toml")
        .read_text(encoding="utf-8")
        .replace("[serving]\n", "[serving]\nenabled = false\n")
    )
    stage = parse_stage("dev", tomllib.loads(text), source="test.toml")
    stacks = app_module.build_stacks(cdk.App(outdir=str(tmp_path), context=app_module.repo_context()), stage)
    assert stacks.serving is None
    assert all(t.prefix is None for t in stacks.data.lake.trusted_principals)

"""Controls V1, V2 and D2 on the synthesized ``Rookery-<stage>-Network`` of every stage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pytest
from infra_testing import Synth, resources

from infra.audit.template import flatten
from infra.constructs.network import WORKLOADS
from infra.endpoint_policies import (
    AWS_OWNED_BUCKETS,
    ECR_ENDPOINTS,
    INTERFACE_ENDPOINT_ACCESS,
    PROJECT_BUCKET_ACTIONS,
)
from stage import DEFAULT_ENDPOINTS, available_stages, load_stage
from stage.names import ALL_BUCKETS

pytestmark = pytest.mark.xdist_group("infra-synth")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _account(synth: Synth) -> Any:
    return synth.stage.account or {"Ref": "AWS::AccountId"}


def _group_id(synth: Synth, group: Any) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [synth.logical_id(group), "GroupId"]}


# ---------------------------------------------------------------- V1


def test_subnets_are_isolated_one_per_az(synth: Synth) -> None:
    subnets = resources(synth.network, "AWS::EC2::Subnet")
    assert len(subnets) == synth.stage.max_azs
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is False for s in subnets.values())
    assert {s["Properties"]["CidrBlock"].rsplit("/", 1)[1] for s in subnets.values()} == {"24"}


@pytest.mark.parametrize(
    "resource_type",
    [
        "AWS::EC2::InternetGateway",
        "AWS::EC2::NatGateway",
        "AWS::EC2::EgressOnlyInternetGateway",
        "AWS::EC2::VPCGatewayAttachment",
        "AWS::EC2::EIP",
        "AWS::EC2::Route",
    ],
)
def test_no_path_to_the_internet(synth: Synth, resource_type: str) -> None:
    assert resources(synth.network, resource_type) == {}


def test_vpc_uses_the_stage_cidr_with_private_dns(synth: Synth) -> None:
    vpc = synth.props(synth.stacks.network.network.vpc)
    assert vpc["CidrBlock"] == synth.stage.vpc_cidr
    assert vpc["EnableDnsHostnames"] is True
    assert vpc["EnableDnsSupport"] is True


def test_default_security_group_is_stripped(synth: Synth) -> None:
    [restrict] = resources(synth.network, "Custom::VpcRestrictDefaultSG").values()
    vpc_id = synth.logical_id(synth.stacks.network.network.vpc)
    assert restrict["Properties"]["DefaultSecurityGroupId"] == {
        "Fn::GetAtt": [vpc_id, "DefaultSecurityGroup"]
    }


def test_flow_logs_of_all_traffic_go_to_an_encrypted_retained_log_group(synth: Synth) -> None:
    network = synth.stacks.network.network
    [flow] = resources(synth.network, "AWS::EC2::FlowLog").values()
    assert flow["Properties"]["ResourceId"] == {"Ref": synth.logical_id(network.vpc)}
    assert flow["Properties"]["TrafficType"] == "ALL"
    assert flow["Properties"]["LogDestinationType"] == "cloud-watch-logs"
    assert flow["Properties"]["LogGroupName"] == {"Ref": synth.logical_id(network.flow_log_group)}
    group = synth.props(network.flow_log_group)
    assert group["RetentionInDays"] == synth.stage.log_retention_days
    assert group["KmsKeyId"] == {"Fn::GetAtt": [synth.logical_id(network.flow_logs_key), "Arn"]}
    assert synth.props(network.flow_logs_key)["EnableKeyRotation"] is True


def test_flow_log_key_trusts_cloudwatch_logs_only_for_this_accounts_log_groups(synth: Synth) -> None:
    policy = synth.props(synth.stacks.network.network.flow_logs_key)["KeyPolicy"]["Statement"]
    [logs] = [s for s in policy if s.get("Sid") == "AllowCloudWatchLogsOfThisAccount"]
    assert "logs." in flatten(logs["Principal"]["Service"])
    assert "kms:EncryptionContext:aws:logs:arn" in logs["Condition"]["ArnLike"]
    # A "*" principal only in a conditioned deny (K1's grant rule), never in an allow.
    assert all(
        s["Principal"] not in ({"AWS": "*"}, "*") or (s["Effect"] == "Deny" and s["Condition"])
        for s in policy
    )


# ---------------------------------------------------------------- V2


def test_interface_endpoints_are_exactly_the_configured_ones(synth: Synth) -> None:
    endpoints = synth.stacks.network.network.interface_endpoints
    assert set(endpoints) == set(synth.stage.interface_endpoints)
    for name, endpoint in endpoints.items():
        props = synth.props(endpoint)
        assert flatten(props["ServiceName"]).endswith(f".{name}"), name
        assert props["VpcEndpointType"] == "Interface"
        assert props["PrivateDnsEnabled"] is True
        assert props["SecurityGroupIds"] == [
            _group_id(synth, synth.stacks.network.network.endpoint_security_group)
        ]
        assert len(props["SubnetIds"]) == synth.stage.max_azs


# The minimum interface-endpoint set the perimeter needs (the services the jobs, notebooks, ingestion
# and the image pull call), by AWS service name, written out here on purpose (not read from stage):
# dropping one from the defaults or a stage file must fail a test.
MINIMUM_ENDPOINTS: Final[Mapping[str, str]] = {
    "sagemaker.api": "com.amazonaws.{region}.sagemaker.api",
    "sagemaker.runtime": "com.amazonaws.{region}.sagemaker.runtime",
    "notebook": "aws.sagemaker.{region}.notebook",
    "sts": "com.amazonaws.{region}.sts",
    "logs": "com.amazonaws.{region}.logs",
    "monitoring": "com.amazonaws.{region}.monitoring",
    "kms": "com.amazonaws.{region}.kms",
    "ecr.api": "com.amazonaws.{region}.ecr.api",
    "ecr.dkr": "com.amazonaws.{region}.ecr.dkr",
    "glue": "com.amazonaws.{region}.glue",
    "kinesis-firehose": "com.amazonaws.{region}.kinesis-firehose",
}


def test_the_defaults_hold_the_minimum_endpoint_set() -> None:
    missing = sorted(set(MINIMUM_ENDPOINTS) - set(DEFAULT_ENDPOINTS))
    assert not missing, f"stage.DEFAULT_ENDPOINTS lacks {missing}"


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_each_shipped_stage_configures_the_minimum_endpoint_set(name: str) -> None:
    assert name in available_stages()
    missing = sorted(set(MINIMUM_ENDPOINTS) - set(load_stage(name).interface_endpoints))
    assert not missing, f"stage {name!r}: interface_endpoints lacks {missing}"


def test_each_network_template_has_the_minimum_endpoints_by_service_name(synth: Synth) -> None:
    # Read from the template itself, not the construct objects: this is what CloudFormation creates.
    region = synth.stage.region if synth.stage.account else "<AWS::Region>"
    created = {
        flatten(r["Properties"]["ServiceName"])
        for r in resources(synth.network, "AWS::EC2::VPCEndpoint").values()
        if r["Properties"]["VpcEndpointType"] == "Interface"
    }
    missing = sorted({service.format(region=region) for service in MINIMUM_ENDPOINTS.values()} - created)
    assert not missing, f"{synth.stage.stack_name('Network')} lacks interface endpoints {missing}"


def test_endpoints_accept_https_only_from_the_workload_security_groups(synth: Synth) -> None:
    network = synth.stacks.network.network
    endpoint_group = _group_id(synth, network.endpoint_security_group)
    inline = synth.props(network.endpoint_security_group).get("SecurityGroupIngress", [])
    assert inline == []  # open=False: nothing but the rules below
    ingress = [
        r["Properties"]
        for r in resources(synth.network, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == endpoint_group
    ]
    assert sorted(flatten(r["SourceSecurityGroupId"]) for r in ingress) == sorted(
        flatten(_group_id(synth, g)) for g in network.workload_security_groups.values()
    )
    assert all((r["IpProtocol"], r["FromPort"], r["ToPort"]) == ("tcp", 443, 443) for r in ingress)
    assert set(network.workload_security_groups) == set(WORKLOADS)


def test_workloads_may_leave_only_on_443_and_talk_tcp_within_a_sagemaker_job(synth: Synth) -> None:
    network = synth.stacks.network.network
    for name, group in network.workload_security_groups.items():
        egress = synth.props(group)["SecurityGroupEgress"]
        assert egress == [
            {
                "CidrIp": "0.0.0.0/0",
                "Description": "HTTPS to S3 via the gateway endpoint (the only route out)",
                "FromPort": 443,
                "IpProtocol": "tcp",
                "ToPort": 443,
            }
        ], name
    sagemaker = _group_id(synth, network.workload_security_groups["sagemaker"])
    self_rules = [
        r["Properties"]
        for r in resources(synth.network, "AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == sagemaker
    ]
    assert [
        (r["SourceSecurityGroupId"], r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in self_rules
    ] == [(sagemaker, "tcp", 0, 65535)]


def test_every_interface_endpoint_policy_pins_the_account_and_lists_its_resources(synth: Synth) -> None:
    for name, endpoint in synth.stacks.network.network.interface_endpoints.items():
        statements = synth.props(endpoint)["PolicyDocument"]["Statement"]
        assert len(statements) == len(INTERFACE_ENDPOINT_ACCESS[name]), name
        for statement, access in zip(statements, INTERFACE_ENDPOINT_ACCESS[name], strict=True):
            assert statement["Effect"] == "Allow"
            assert statement["Principal"] == {"AWS": "*"}
            assert statement["Condition"] == {"StringEquals": {"aws:PrincipalAccount": _account(synth)}}
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert sorted(actions) == sorted(access.actions)
            assert "*" not in actions
            resources_ = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            assert len(resources_) == len(access.resources)


def test_endpoint_policy_reasons_travel_with_the_template(synth: Synth) -> None:
    for name, endpoint in synth.stacks.network.network.interface_endpoints.items():
        reasons = synth.resource(endpoint)["Metadata"]["rookery:policy-reasons"]
        assert [r["reason"] for r in reasons] == [a.reason for a in INTERFACE_ENDPOINT_ACCESS[name]]


# ---------------------------------------------------------------- D2


def test_s3_gateway_endpoint_serves_every_subnet(synth: Synth) -> None:
    network = synth.stacks.network.network
    props = synth.props(network.s3_endpoint)
    assert props["VpcEndpointType"] == "Gateway"
    assert len(props["RouteTableIds"]) == synth.stage.max_azs


def test_s3_gateway_policy_names_the_project_buckets_and_the_ecr_layer_bucket_only(synth: Synth) -> None:
    props = synth.props(synth.stacks.network.network.s3_endpoint)
    project, *owned = props["PolicyDocument"]["Statement"]
    account = synth.stage.account or "<AWS::AccountId>"
    region = synth.stage.region if synth.stage.account else "<AWS::Region>"
    names = [f"{synth.stage.qualifier}-{purpose}-{account}-{region}" for purpose in ALL_BUCKETS]
    assert sorted(flatten(r) for r in project["Resource"]) == sorted(
        arn
        for name in names
        for arn in (f"arn:<AWS::Partition>:s3:::{name}", f"arn:<AWS::Partition>:s3:::{name}/*")
    )
    assert sorted(project["Action"]) == sorted(PROJECT_BUCKET_ACTIONS)
    assert project["Condition"] == {
        "StringEquals": {"aws:PrincipalAccount": _account(synth), "aws:ResourceAccount": _account(synth)}
    }
    assert len(owned) == len(AWS_OWNED_BUCKETS) == 1
    [layers] = owned
    assert flatten(layers["Resource"]) == f"arn:<AWS::Partition>:s3:::prod-{region}-starport-layer-bucket/*"
    assert layers["Action"] == "s3:GetObject"


def test_s3_bucket_names_match_the_data_stack(synth: Synth) -> None:
    gateway = synth.props(synth.stacks.network.network.s3_endpoint)["PolicyDocument"]["Statement"][0]
    named = {flatten(r).split(":::", 1)[1] for r in gateway["Resource"] if not flatten(r).endswith("/*")}
    lake = synth.stacks.data.lake
    buckets = [*lake.buckets.values(), lake.access_logs]
    assert {flatten(synth.props(b)["BucketName"]) for b in buckets} == named


# ---------------------------------------------------------------- stack


def test_network_stack_name_and_termination_protection(synth: Synth) -> None:
    stack = synth.assembly.stack(f"Rookery-{synth.stage.name}-Network")
    assert stack.termination_protection is synth.stage.production


# ---------------------------------------------------------------- E1


def test_ecr_endpoints_admit_only_the_projects_registry(synth: Synth) -> None:
    endpoints = synth.stacks.network.network.interface_endpoints
    for name in ECR_ENDPOINTS:
        pulls = [
            s
            for s in synth.props(endpoints[name])["PolicyDocument"]["Statement"]
            if "ecr:BatchGetImage" in _as_list(s["Action"])
        ]
        # The shipped stages train on the project image: no other registry is admitted.
        region = synth.stage.region if synth.stage.account else "<AWS::Region>"  # a pinned stage's own
        assert [flatten(s["Resource"]) for s in pulls] == [
            f"arn:<AWS::Partition>:ecr:{region}:{flatten(_account(synth))}:repository/*"
        ], name


def test_an_external_image_the_stage_allows_adds_its_registrys_account_to_the_ecr_endpoints_only() -> None:
    import aws_cdk as cdk  # noqa: PLC0415

    from infra.constructs.network import NetworkProps, PrivateNetwork  # noqa: PLC0415
    from infra.constructs.props import PropsError  # noqa: PLC0415

    fields: dict[str, Any] = {
        "qualifier": "probe-dev",
        "vpc_cidr": "10.0.0.0/16",
        "project_bucket_names": ("probe-raw",),
    }
    stack = cdk.Stack(cdk.App(), "EcrProbe")
    network = PrivateNetwork(stack, "Network", props=NetworkProps(**fields, image_accounts=("141502667606",)))
    for name, endpoint in network.interface_endpoints.items():
        document = stack.resolve(endpoint.node.default_child.policy_document)  # type: ignore[union-attr]
        resources_ = [flatten(r) for s in document["Statement"] for r in _as_list(s["Resource"])]
        external = [r for r in resources_ if "141502667606" in r]
        expected = (
            ["arn:<AWS::Partition>:ecr:<AWS::Region>:141502667606:repository/*"]
            if name in ECR_ENDPOINTS
            else []
        )
        assert external == expected, name
    with pytest.raises(PropsError, match=r"image_accounts.*'1415' is not an AWS account id"):
        NetworkProps(**fields, image_accounts=("1415",))


def test_the_rendered_pipeline_names_the_accounts_of_its_external_images() -> None:
    from infra.constructs.pipeline import RenderedPipeline  # noqa: PLC0415
    from pipelines import PipelineResources, PipelineSettings  # noqa: PLC0415

    stage = load_stage("dev")
    settings = PipelineSettings.from_stage(stage, PipelineResources.placeholders(stage))
    builtin = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1"
    definition = {
        "Steps": [
            {"Name": "Train", "Arguments": {"AlgorithmSpecification": {"TrainingImage": builtin}}},
            {
                "Name": "Evaluate",
                "Arguments": {"AppSpecification": {"ImageUri": settings.resources.image_uri}},
            },
        ]
    }
    assert RenderedPipeline(settings=settings, definition=definition).external_image_accounts() == (
        "141502667606",
    )
    assert RenderedPipeline(settings=settings, definition={"Steps": []}).external_image_accounts() == ()

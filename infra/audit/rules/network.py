"""rookery's network rules (V1, V2, D2, E1): no way to the internet, flow logs, and what each VPC endpoint
admits."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from infra.audit.rules.pack import rule
from infra.audit.template import (
    Template,
    as_list,
    condition_keys,
    flatten,
    is_any_principal,
    props,
    resources,
    statements,
    target,
)

_INTERNET_TYPES: Final = (
    "AWS::EC2::InternetGateway",
    "AWS::EC2::NatGateway",
    "AWS::EC2::EgressOnlyInternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
)


@rule(
    id="Rookery-V1",
    control="V1",
    title="No path to or from the internet",
    fix="remove gateways, NAT and default routes",
)
def _no_internet_path(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, *_INTERNET_TYPES):
        yield logical_id, f"{resource['Type']} gives the VPC a path to or from the internet"
    for logical_id, resource in resources(template, "AWS::EC2::Route"):
        p = props(resource)
        if p.get("DestinationCidrBlock") == "0.0.0.0/0" or p.get("DestinationIpv6CidrBlock") == "::/0":
            yield logical_id, "a default route leaves the VPC"
    for logical_id, resource in resources(template, "AWS::EC2::Subnet"):
        if props(resource).get("MapPublicIpOnLaunch") is True:
            yield logical_id, "the subnet gives instances public IP addresses"


@rule(
    id="Rookery-V1b",
    control="V1",
    title="VPC flow logs to an encrypted, retained log group",
    fix="add a flow log of ALL traffic to a KMS-encrypted log group with retention",
)
def _flow_logs(template: Template) -> Iterator[tuple[str, str]]:
    logs_by_vpc: dict[str, list[Mapping[str, Any]]] = {}
    for _, resource in resources(template, "AWS::EC2::FlowLog"):
        vpc = target(props(resource).get("ResourceId"))
        if vpc:
            logs_by_vpc.setdefault(vpc, []).append(props(resource))
    groups = dict(resources(template, "AWS::Logs::LogGroup"))
    for logical_id, _ in resources(template, "AWS::EC2::VPC"):
        flows = logs_by_vpc.get(logical_id, [])
        if not any(f.get("TrafficType") == "ALL" for f in flows):
            yield logical_id, "the VPC has no flow log of ALL traffic"
        for flow in flows:
            group = groups.get(target(flow.get("LogGroupName")) or "")
            if group is None:
                yield logical_id, "the VPC's flow log does not go to a log group of this stack"
            elif not props(group).get("KmsKeyId") or not props(group).get("RetentionInDays"):
                yield logical_id, "the VPC's flow-log group lacks a KMS key or a retention period"


@rule(
    id="Rookery-V2",
    control="V2",
    title="Every VPC endpoint carries a policy",
    fix="add an endpoint policy",
)
def _endpoint_policy(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::EC2::VPCEndpoint"):
        if not statements(props(resource).get("PolicyDocument")):
            yield logical_id, "the VPC endpoint has no endpoint policy (AWS's default allows everything)"


@rule(
    id="Rookery-V2b",
    control="V2",
    title="Interface endpoints admit HTTPS from security groups only",
    fix="replace address-range rules with rules from the workload security groups",
)
def _endpoint_ingress(template: Template) -> Iterator[tuple[str, str]]:
    groups: set[str] = set()
    for logical_id, resource in resources(template, "AWS::EC2::VPCEndpoint"):
        p = props(resource)
        if p.get("VpcEndpointType") == "Interface":
            ids = [target(g) for g in as_list(p.get("SecurityGroupIds"))]
            if not ids:
                yield logical_id, "the interface endpoint has no security group of this stack"
            groups.update(i for i in ids if i)
    for group in sorted(groups):
        inline = props(template.get("Resources", {}).get(group, {})).get("SecurityGroupIngress")
        rules = [(group, r) for r in as_list(inline)]
        rules += [
            (logical_id, props(resource))
            for logical_id, resource in resources(template, "AWS::EC2::SecurityGroupIngress")
            if target(props(resource).get("GroupId")) == group
        ]
        for logical_id, ingress in rules:
            if not ingress.get("SourceSecurityGroupId"):
                yield (
                    logical_id,
                    f"endpoint security group {group} admits an address range, not a security group",
                )
            elif (
                ingress.get("IpProtocol") != "tcp"
                or ingress.get("FromPort") != 443
                or ingress.get("ToPort") != 443
            ):
                yield logical_id, f"endpoint security group {group} admits more than TCP 443"


@rule(
    id="Rookery-V2c",
    control="V2",
    title="Endpoint policies pin the principal's account",
    fix="add an aws:PrincipalAccount condition",
)
def _endpoint_principals(template: Template) -> Iterator[tuple[str, str]]:
    account_keys = {"aws:principalaccount", "aws:principalorgid", "aws:principalarn"}
    for logical_id, resource in resources(template, "AWS::EC2::VPCEndpoint"):
        gateway = props(resource).get("VpcEndpointType", "Gateway") == "Gateway"
        for statement in statements(props(resource).get("PolicyDocument")):
            if statement.get("Effect") != "Allow":
                continue
            if "*" in as_list(statement.get("Action")):
                yield logical_id, "an endpoint policy statement allows every action ('*')"
            if not is_any_principal(statement.get("Principal")) or condition_keys(statement) & account_keys:
                continue
            if gateway and _named_buckets_only(statement):
                continue  # AWS-owned buckets, read with AWS-signed URLs (D2 checks the names)
            yield logical_id, "an endpoint policy statement admits any principal without an account condition"


_BUCKET_ARN: Final = re.compile(r"^arn:[^:]*:s3:::(?P<bucket>[^/]*)(?P<key>/.*)?$")


def _named_buckets_only(statement: Mapping[str, Any]) -> bool:
    arns = [flatten(r) for r in as_list(statement.get("Resource"))]
    for arn in arns:
        match = _BUCKET_ARN.match(arn.replace("<AWS::Partition>", "aws"))
        if match is None or not match["bucket"] or "*" in match["bucket"] or "?" in match["bucket"]:
            return False
    return bool(arns)


@rule(
    id="Rookery-D2",
    control="D2",
    title="The S3 gateway endpoint names its buckets",
    fix="list the bucket ARNs",
)
def _s3_gateway_buckets(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::EC2::VPCEndpoint"):
        p = props(resource)
        if p.get("VpcEndpointType", "Gateway") != "Gateway" or ".s3" not in flatten(p.get("ServiceName")):
            continue
        for statement in statements(p.get("PolicyDocument")):
            if statement.get("Effect") == "Allow" and not _named_buckets_only(statement):
                yield (
                    logical_id,
                    (
                        "the S3 gateway endpoint policy allows buckets it does not name "
                        f"({flatten(statement.get('Resource'))}); list each bucket"
                    ),
                )


# One ARN field: literal text or a flattened reference such as <AWS::AccountId>.
_FIELD: Final = r"(?:<[^>]*>|[^:<])*"
_ECR_REPOSITORY: Final = re.compile(rf"^arn:{_FIELD}:ecr:{_FIELD}:(?P<account>{_FIELD}):repository/.+$")
_ECR_LOGIN: Final = frozenset({"ecr:getauthorizationtoken"})


@rule(
    id="Rookery-E1",
    control="E1",
    title="ECR endpoints admit the project account's repositories (and named image accounts) only",
    fix="name the repositories' account (the stack's account, or the account of an image the stage allows)",
)
def _ecr_endpoint_accounts(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::EC2::VPCEndpoint"):
        service = flatten(props(resource).get("ServiceName"))
        if not (service.endswith(".ecr.api") or service.endswith(".ecr.dkr")):
            continue
        for statement in statements(props(resource).get("PolicyDocument")):
            if statement.get("Effect") != "Allow":
                continue
            actions = {a.lower() for a in as_list(statement.get("Action")) if isinstance(a, str)}
            for arn in (flatten(r) for r in as_list(statement.get("Resource"))):
                if arn == "*":
                    if not actions <= _ECR_LOGIN:
                        yield logical_id, f"{sorted(actions)} are allowed on every registry ('*')"
                    continue
                match = _ECR_REPOSITORY.match(arn)
                account = match["account"] if match else ""
                if not (account == "<AWS::AccountId>" or (len(account) == 12 and account.isdigit())):
                    yield logical_id, f"{arn!r} admits repositories of any account, not named ones"

"""Architecture facts a security reviewer asks for, read from synthesized templates.

Pure functions over template JSON (no CDK): what can reach the internet, which endpoints exist
and what their policies admit, who may talk to whom, which keys protect what and who may use
them, how every data store is encrypted, versioned and logged, and what each role may do.
``rookery audit`` renders them; ``rookery demo`` may print a summary of the same data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from infra.audit.rules import EXCEPTION_REASONS, service_exception_reasons
from infra.audit.template import (
    Template,
    as_list,
    condition_keys,
    flatten,
    props,
    resources,
    statements,
    target,
)

POLICY_REASONS = "rookery:policy-reasons"


def _statement(statement: Mapping[str, Any]) -> dict[str, Any]:
    principal = statement.get("Principal")
    return {
        "sid": statement.get("Sid", ""),
        "effect": statement.get("Effect", ""),
        "principal": flatten(principal if not isinstance(principal, Mapping) else list(principal.values())),
        "actions": [flatten(a) for a in as_list(statement.get("Action"))],
        "resources": [flatten(r) for r in as_list(statement.get("Resource"))],
        "conditions": sorted(condition_keys(statement)),
    }


def network_facts(template: Template) -> dict[str, Any]:
    """Internet paths (should all be zero), subnets and flow logs."""
    count = {t: sum(1 for _ in resources(template, t)) for t in (
        "AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EgressOnlyInternetGateway",
        "AWS::EC2::VPCGatewayAttachment", "AWS::EC2::Route",
    )}  # fmt: skip
    return {
        "vpcs": [
            {"logical_id": lid, "cidr": flatten(props(r).get("CidrBlock"))}
            for lid, r in resources(template, "AWS::EC2::VPC")
        ],
        "internet_gateways": count["AWS::EC2::InternetGateway"]
        + count["AWS::EC2::EgressOnlyInternetGateway"],
        "nat_gateways": count["AWS::EC2::NatGateway"],
        "gateway_attachments": count["AWS::EC2::VPCGatewayAttachment"],
        "routes": count["AWS::EC2::Route"],
        "subnets": [
            {
                "logical_id": lid,
                "cidr": flatten(props(r).get("CidrBlock")),
                "az": flatten(props(r).get("AvailabilityZone")),
                "public_ip_on_launch": bool(props(r).get("MapPublicIpOnLaunch")),
            }
            for lid, r in resources(template, "AWS::EC2::Subnet")
        ],
        "flow_logs": [
            {
                "logical_id": lid,
                "vpc": target(props(r).get("ResourceId")),
                "traffic": props(r).get("TrafficType"),
                "log_group": target(props(r).get("LogGroupName")),
            }
            for lid, r in resources(template, "AWS::EC2::FlowLog")
        ],
    }


def endpoint_facts(template: Template) -> list[dict[str, Any]]:
    """Every VPC endpoint, its policy statements and the reason recorded for each."""
    out = []
    for lid, r in resources(template, "AWS::EC2::VPCEndpoint"):
        p = props(r)
        reasons = (r.get("Metadata") or {}).get(POLICY_REASONS, [])
        out.append(
            {
                "logical_id": lid,
                "service": flatten(p.get("ServiceName")).rsplit(".", 1)[-1]
                if p.get("VpcEndpointType") == "Interface"
                else "s3",
                "service_name": flatten(p.get("ServiceName")),
                "type": p.get("VpcEndpointType", "Gateway"),
                "private_dns": p.get("PrivateDnsEnabled"),
                "security_groups": [target(g) for g in as_list(p.get("SecurityGroupIds"))],
                "statements": [_statement(s) for s in statements(p.get("PolicyDocument"))],
                "reasons": reasons,
            }
        )
    return out


def _ports(rule: Mapping[str, Any]) -> str:
    protocol = str(rule.get("IpProtocol"))
    if protocol == "-1":
        return "all traffic"
    low, high = rule.get("FromPort"), rule.get("ToPort")
    return f"{protocol}/{low}" if low == high else f"{protocol}/{low}-{high}"


def security_group_matrix(template: Template) -> list[dict[str, Any]]:
    """One row per ingress or egress rule: group, direction, peer, ports, description."""
    rows = []
    for lid, r in resources(template, "AWS::EC2::SecurityGroup"):
        for direction, key in (("ingress", "SecurityGroupIngress"), ("egress", "SecurityGroupEgress")):
            for rule in as_list(props(r).get(key)):
                rows.append(_row(lid, direction, rule))
    for _, r in resources(template, "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        p = props(r)
        direction = "ingress" if r["Type"].endswith("Ingress") else "egress"
        rows.append(_row(target(p.get("GroupId")) or flatten(p.get("GroupId")), direction, p))
    return sorted(rows, key=lambda row: (row["group"], row["direction"], row["peer"], row["ports"]))


def _row(group: str, direction: str, rule: Mapping[str, Any]) -> dict[str, Any]:
    peer_keys = (
        "SourceSecurityGroupId",
        "DestinationSecurityGroupId",
        "CidrIp",
        "CidrIpv6",
        "DestinationPrefixListId",
    )
    peer = next((rule[k] for k in peer_keys if k in rule), None)
    return {
        "group": group,
        "direction": direction,
        "peer": target(peer) or flatten(peer),
        "peer_is_group": target(peer) is not None,
        "ports": _ports(rule),
        "description": rule.get("Description", ""),
    }


def key_facts(templates: Iterable[Template]) -> list[dict[str, Any]]:
    """Each customer-managed key: alias, rotation, key-policy principals, and the roles granted its use."""
    templates = list(templates)
    keys = []
    for template in templates:
        aliases = {
            target(props(r).get("TargetKeyId")): props(r).get("AliasName")
            for _, r in resources(template, "AWS::KMS::Alias")
        }
        users = _key_users(template)
        for lid, r in resources(template, "AWS::KMS::Key"):
            p = props(r)
            keys.append(
                {
                    "logical_id": lid,
                    "alias": aliases.get(lid, ""),
                    "description": p.get("Description", ""),
                    "rotation": p.get("EnableKeyRotation") is True,
                    "deletion_policy": r.get("DeletionPolicy"),
                    "key_policy": [_statement(s) for s in statements(p.get("KeyPolicy"))],
                    "granted_to": sorted(users.get(lid, set())),
                }
            )
    return keys


def _key_users(template: Template) -> dict[str, set[str]]:
    users: dict[str, set[str]] = {}
    for _, r in resources(template, "AWS::IAM::Policy"):
        roles = [target(x) or flatten(x) for x in as_list(props(r).get("Roles"))]
        for statement in statements(props(r).get("PolicyDocument")):
            if not any(str(a).startswith("kms:") for a in as_list(statement.get("Action"))):
                continue
            for resource in as_list(statement.get("Resource")):
                key = target(resource)
                if key:
                    users.setdefault(key, set()).update(roles)
    return users


def store_facts(template: Template) -> list[dict[str, Any]]:
    """Encryption, versioning, logging and public access of every data store."""
    stores = []
    for lid, r in resources(template, "AWS::S3::Bucket"):
        p = props(r)
        sse = (p.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration", [{}])[0]
        default = sse.get("ServerSideEncryptionByDefault", {})
        block = p.get("PublicAccessBlockConfiguration") or {}
        stores.append(
            {
                "logical_id": lid,
                "kind": "S3 bucket",
                "name": flatten(p.get("BucketName")),
                "encryption": default.get("SSEAlgorithm", "none"),
                "kms_key": target(default.get("KMSMasterKeyID")),
                "bucket_key": bool(sse.get("BucketKeyEnabled")),
                "versioning": (p.get("VersioningConfiguration") or {}).get("Status") == "Enabled",
                "access_logs": target((p.get("LoggingConfiguration") or {}).get("DestinationBucketName")),
                "public_access_blocked": all(
                    block.get(k) is True
                    for k in (
                        "BlockPublicAcls",
                        "BlockPublicPolicy",
                        "IgnorePublicAcls",
                        "RestrictPublicBuckets",
                    )
                ),
                "lifecycle_rules": [
                    rule.get("Id") for rule in (p.get("LifecycleConfiguration") or {}).get("Rules", [])
                ],
                "deletion_policy": r.get("DeletionPolicy"),
            }
        )
    for lid, r in resources(template, "AWS::Logs::LogGroup"):
        p = props(r)
        stores.append(
            {
                "logical_id": lid,
                "kind": "log group",
                "name": flatten(p.get("LogGroupName")) if p.get("LogGroupName") else "(generated)",
                "encryption": "aws:kms" if p.get("KmsKeyId") else "none",
                "kms_key": target(p.get("KmsKeyId")),
                "retention_days": p.get("RetentionInDays"),
                "deletion_policy": r.get("DeletionPolicy"),
            }
        )
    for lid, r in resources(template, "AWS::SQS::Queue"):
        key = props(r).get("KmsMasterKeyId")
        stores.append(
            {
                "logical_id": lid,
                "kind": "SQS queue",
                "encryption": "aws:kms" if key else "none",
                "kms_key": target(key),
                "deletion_policy": r.get("DeletionPolicy"),
            }
        )
    for lid, r in resources(template, "AWS::KinesisFirehose::DeliveryStream"):
        p = props(r)
        s3 = p.get("ExtendedS3DestinationConfiguration") or {}
        stores.append(
            {
                "logical_id": lid,
                "kind": "Firehose stream",
                "name": flatten(p.get("DeliveryStreamName")),
                "encryption": (p.get("DeliveryStreamEncryptionConfigurationInput") or {}).get(
                    "KeyType", "none"
                ),
                "kms_key": target((p.get("DeliveryStreamEncryptionConfigurationInput") or {}).get("KeyARN")),
                "delivery_encryption_key": target(
                    (s3.get("EncryptionConfiguration") or {})
                    .get("KMSEncryptionConfig", {})
                    .get("AWSKMSKeyARN")
                ),
                "prefix": s3.get("Prefix"),
                "error_prefix": s3.get("ErrorOutputPrefix"),
                "logging": (s3.get("CloudWatchLoggingOptions") or {}).get("Enabled") is True,
            }
        )
    for lid, r in resources(template, "AWS::Athena::WorkGroup"):
        result = (props(r).get("WorkGroupConfiguration") or {}).get("ResultConfiguration") or {}
        encryption = result.get("EncryptionConfiguration") or {}
        stores.append(
            {
                "logical_id": lid,
                "kind": "Athena results",
                "name": flatten(result.get("OutputLocation")),
                "encryption": encryption.get("EncryptionOption", "none"),
                "kms_key": target(encryption.get("KmsKey")),
            }
        )
    for lid, r in resources(template, "AWS::Glue::DataCatalogEncryptionSettings"):
        at_rest = (props(r).get("DataCatalogEncryptionSettings") or {}).get("EncryptionAtRest") or {}
        stores.append(
            {
                "logical_id": lid,
                "kind": "Glue Data Catalog",
                "encryption": at_rest.get("CatalogEncryptionMode", "none"),
                "kms_key": target(at_rest.get("SseAwsKmsKeyId")),
            }
        )
    return stores


def iam_facts(template: Template) -> list[dict[str, Any]]:
    """Each role: who may assume it, managed policies, and every action on every resource it is given."""
    policies: dict[str, list[dict[str, Any]]] = {}
    for _, r in resources(template, "AWS::IAM::Policy"):
        for role in as_list(props(r).get("Roles")):
            name = target(role)
            if name:
                policies.setdefault(name, []).extend(
                    _statement(s) for s in statements(props(r).get("PolicyDocument"))
                )
    roles = []
    for lid, r in resources(template, "AWS::IAM::Role"):
        p = props(r)
        trust = statements(p.get("AssumeRolePolicyDocument"))
        inline = [
            _statement(s)
            for policy in as_list(p.get("Policies"))
            for s in statements(policy.get("PolicyDocument"))
        ]
        roles.append(
            {
                "logical_id": lid,
                "description": p.get("Description", ""),
                "assumed_by": sorted({_statement(s)["principal"] for s in trust}),
                "managed_policies": [flatten(a) for a in as_list(p.get("ManagedPolicyArns"))],
                "statements": policies.get(lid, []) + inline,
            }
        )
    return roles


def bucket_exceptions(template: Template) -> list[dict[str, Any]]:
    """D1b's exception register: who may reach each data bucket without the VPC endpoint, and why.

    ``exceptions`` are principals (``aws:PrincipalArn``); ``via_services`` are services whose requests
    on a caller's behalf (``aws:CalledVia``) skip the endpoint. Each carries the reason written where
    the policy was built, or ``""`` when none was (the ``Rookery-D1b2`` rule fails the gate then).
    """
    out = []
    for lid, r in resources(template, "AWS::S3::BucketPolicy"):
        metadata = r.get("Metadata") or {}
        reasons = as_list(metadata.get(EXCEPTION_REASONS))
        service_reasons = service_exception_reasons(metadata)
        for statement in statements(props(r).get("PolicyDocument")):
            condition = statement.get("Condition") or {}
            principals = condition.get("ArnNotLike", {}).get("aws:PrincipalArn")
            if statement.get("Effect") == "Deny" and principals is not None:
                arns = [flatten(a) for a in as_list(principals)]
                services = [
                    flatten(s)
                    for s in as_list(condition.get("ForAllValues:StringNotEquals", {}).get("aws:CalledVia"))
                ]
                out.append(
                    {
                        "bucket": target(props(r).get("Bucket")),
                        "policy": lid,
                        "exceptions": [
                            {"principal": arn, "reason": reasons[i] if i < len(reasons) else ""}
                            for i, arn in enumerate(arns)
                        ],
                        "via_services": [
                            {"service": service, "reason": service_reasons.get(service, "")}
                            for service in services
                        ],
                    }
                )
    return out

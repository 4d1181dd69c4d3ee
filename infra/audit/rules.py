"""rookery's own rule pack: checks no built-in cdk-nag pack makes, as pure functions over template JSON.

Each rule names the control it proves (``security-controls.md``) and yields ``(logical id,
message)`` for every resource that breaks it. ``ROOKERY_RULES`` is the pack ``app.py``
registers; later stacks extend it (``ROOKERY_RULES.extended(rule, ...)``), e.g. with a rule
that parses the SageMaker pipeline definition. The same functions run inside ``cdk synth``
(through ``infra.audit.plugin``) and in ``rookery audit``.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from infra.stateful import STATEFUL_RESOURCE_TYPES

Template = Mapping[str, Any]
Check = Callable[[Template], Iterable[tuple[str, str]]]

PACK_NAME: Final = "Rookery"

# Template metadata of a data bucket's policy: the written reason behind each exception to D1b's deny,
# one per excepted principal (in order) and one per service whose requests skip the endpoint.
EXCEPTION_REASONS: Final = "rookery:vpc-endpoint-exceptions"
SERVICE_EXCEPTION_REASONS: Final = "rookery:vpc-endpoint-service-exceptions"  # [{"service", "reason"}]


@dataclass(frozen=True)
class Rule:
    """One check: ``id`` is ``Rookery-<control>`` (acknowledge as ``Rookery::Rookery-<control>``)."""

    id: str
    control: str
    title: str
    fix: str
    check: Check


@dataclass(frozen=True)
class Finding:
    rule_id: str
    logical_id: str
    message: str


@dataclass(frozen=True)
class RulePack:
    name: str
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        ids = [r.id for r in self.rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"rule ids {duplicates} appear twice in pack {self.name!r}")
        bad = [i for i in ids if not i.startswith(f"{self.name}-")]
        if bad:
            raise ValueError(f"rule ids {bad} must start with '{self.name}-'")

    def extended(self, *rules: Rule) -> RulePack:
        """This pack plus ``rules`` (later stacks add their SageMaker checks this way)."""
        return RulePack(self.name, (*self.rules, *rules))

    def evaluate(self, template: Template) -> list[Finding]:
        return [
            Finding(rule.id, logical_id, message)
            for rule in self.rules
            for logical_id, message in rule.check(template)
        ]


# ---------------------------------------------------------------- template helpers


def resources(template: Template, *types: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(logical id, resource) of every resource of the given types (all resources without types)."""
    for logical_id, resource in template.get("Resources", {}).items():
        if not types or resource.get("Type") in types:
            yield logical_id, resource


def props(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    return resource.get("Properties") or {}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def target(value: Any) -> str | None:
    """The logical id a ``Ref`` or ``Fn::GetAtt`` points at (None for anything else)."""
    if isinstance(value, Mapping):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return str(att[0] if isinstance(att, list) else att.split(".")[0])
    return None


def statements(document: Any) -> list[Mapping[str, Any]]:
    if not isinstance(document, Mapping):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def is_any_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS"))


def condition_keys(statement: Mapping[str, Any]) -> set[str]:
    """Every condition key of a statement, lower-cased (IAM compares keys case-insensitively)."""
    return {key.lower() for block in (statement.get("Condition") or {}).values() for key in block}


def flatten(value: Any) -> str:
    """A readable string for a (possibly intrinsic) value: literals stay, references become <Id>."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return str(sep).join(flatten(p) for p in parts)
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            return str(sub[0] if isinstance(sub, list) else sub)
        ref = target(value)
        if ref is not None:
            return f"<{ref}>"
    if isinstance(value, list):
        return ",".join(flatten(v) for v in value)
    return str(value)


# ---------------------------------------------------------------- network (V1, V2, D2)

_INTERNET_TYPES: Final = (
    "AWS::EC2::InternetGateway",
    "AWS::EC2::NatGateway",
    "AWS::EC2::EgressOnlyInternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
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


def _endpoint_policy(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::EC2::VPCEndpoint"):
        if not statements(props(resource).get("PolicyDocument")):
            yield logical_id, "the VPC endpoint has no endpoint policy (AWS's default allows everything)"


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
        for logical_id, rule in rules:
            if not rule.get("SourceSecurityGroupId"):
                yield (
                    logical_id,
                    f"endpoint security group {group} admits an address range, not a security group",
                )
            elif rule.get("IpProtocol") != "tcp" or rule.get("FromPort") != 443 or rule.get("ToPort") != 443:
                yield logical_id, f"endpoint security group {group} admits more than TCP 443"


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


# ---------------------------------------------------------------- data (D1b, D3-D7)


def _vpc_only_buckets(template: Template) -> Iterator[tuple[str, str]]:
    log_targets = {
        target(props(r).get("LoggingConfiguration", {}).get("DestinationBucketName"))
        for _, r in resources(template, "AWS::S3::Bucket")
    }
    denied: set[str] = set()
    for _, resource in resources(template, "AWS::S3::BucketPolicy"):
        bucket = target(props(resource).get("Bucket"))
        for statement in statements(props(resource).get("PolicyDocument")):
            keys = condition_keys(statement)
            if bucket and statement.get("Effect") == "Deny" and keys & {"aws:sourcevpce", "aws:sourcevpc"}:
                denied.add(bucket)
    for logical_id, _ in resources(template, "AWS::S3::Bucket"):
        if logical_id not in log_targets and logical_id not in denied:
            yield logical_id, "the data bucket does not deny access from outside the project's VPC endpoint"


def service_exception_reasons(metadata: Mapping[str, Any]) -> dict[str, str]:
    """``{service: reason}`` from a bucket policy's metadata (an entry without a reason maps to "")."""
    return {
        str(e.get("service")): str(e.get("reason") or "")
        for e in as_list(metadata.get(SERVICE_EXCEPTION_REASONS))
        if isinstance(e, Mapping)
    }


def _vpc_exception_reasons(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::S3::BucketPolicy"):
        metadata = resource.get("Metadata") or {}
        reasons = as_list(metadata.get(EXCEPTION_REASONS))
        service_reasons = service_exception_reasons(metadata)
        for statement in statements(props(resource).get("PolicyDocument")):
            endpoint_keys = condition_keys(statement) & {"aws:sourcevpce", "aws:sourcevpc"}
            if statement.get("Effect") != "Deny" or not endpoint_keys:
                continue
            condition = statement.get("Condition") or {}
            principals = as_list(condition.get("ArnNotLike", {}).get("aws:PrincipalArn"))
            for i, principal in enumerate(principals):
                if i >= len(reasons) or not str(reasons[i]).strip():
                    yield logical_id, f"{flatten(principal)} may skip the VPC endpoint without a reason"
            services = as_list(condition.get("ForAllValues:StringNotEquals", {}).get("aws:CalledVia"))
            for service in map(flatten, services):
                if not service_reasons.get(service, "").strip():
                    yield logical_id, f"calls via {service} may skip the VPC endpoint without a reason"


def _key_policies(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::KMS::Key"):
        p = props(resource)
        if (
            p.get("EnableKeyRotation") is not True
            and p.get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
        ):
            yield logical_id, "the key does not rotate"
        for statement in statements(p.get("KeyPolicy")):
            if (
                statement.get("Effect") == "Allow"
                and is_any_principal(statement.get("Principal"))
                and not statement.get("Condition")
            ):
                yield logical_id, "the key policy allows any principal without a condition"


def _catalog_encryption(template: Template) -> Iterator[tuple[str, str]]:
    glue = list(resources(template, "AWS::Glue::Database", "AWS::Glue::Table", "AWS::Glue::Crawler"))
    settings = [
        props(r).get("DataCatalogEncryptionSettings", {})
        for _, r in resources(template, "AWS::Glue::DataCatalogEncryptionSettings")
    ]
    if glue and not any(
        s.get("EncryptionAtRest", {}).get("CatalogEncryptionMode") == "SSE-KMS"
        and s.get("EncryptionAtRest", {}).get("SseAwsKmsKeyId")
        and s.get("ConnectionPasswordEncryption", {}).get("ReturnConnectionPasswordEncrypted") is True
        for s in settings
    ):
        yield (
            glue[0][0],
            "the Glue catalog is not encrypted with a KMS key (metadata and connection passwords)",
        )
    configurations = dict(resources(template, "AWS::Glue::SecurityConfiguration"))
    for logical_id, resource in resources(template, "AWS::Glue::Crawler"):
        name = props(resource).get("CrawlerSecurityConfiguration")
        config = configurations.get(target(name) or "")
        if config is None:
            yield logical_id, "the crawler has no security configuration of this stack"
            continue
        enc = props(config).get("EncryptionConfiguration", {})
        if enc.get("CloudWatchEncryption", {}).get("CloudWatchEncryptionMode") != "SSE-KMS":
            yield logical_id, "the crawler's security configuration does not encrypt its logs with KMS"
        if not any(e.get("S3EncryptionMode") == "SSE-KMS" for e in as_list(enc.get("S3Encryptions"))):
            yield logical_id, "the crawler's security configuration does not encrypt S3 output with KMS"


def _athena_workgroup(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::Athena::WorkGroup"):
        config = props(resource).get("WorkGroupConfiguration", {})
        result = config.get("ResultConfiguration", {})
        encryption = result.get("EncryptionConfiguration", {})
        if config.get("EnforceWorkGroupConfiguration") is not True:
            yield (
                logical_id,
                "the workgroup lets clients override its settings (EnforceWorkGroupConfiguration)",
            )
        if not result.get("OutputLocation"):
            yield logical_id, "the workgroup sets no result location in the project's bucket"
        if encryption.get("EncryptionOption") not in ("SSE_KMS", "CSE_KMS") or not encryption.get("KmsKey"):
            yield logical_id, "the workgroup does not encrypt query results with a KMS key"


def _firehose(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::KinesisFirehose::DeliveryStream"):
        p = props(resource)
        sse = p.get("DeliveryStreamEncryptionConfigurationInput", {})
        if (
            p.get("DeliveryStreamType", "DirectPut") == "DirectPut"
            and sse.get("KeyType") != "CUSTOMER_MANAGED_CMK"
        ):
            yield logical_id, "the stream is not encrypted at rest with a customer-managed key"
        s3 = p.get("ExtendedS3DestinationConfiguration")
        if s3 is None:
            yield logical_id, "the stream does not deliver to S3 with an extended destination"
            continue
        if not s3.get("ErrorOutputPrefix"):
            yield logical_id, "failed records have no error prefix"
        if not s3.get("EncryptionConfiguration", {}).get("KMSEncryptionConfig"):
            yield logical_id, "delivered objects are not KMS-encrypted"
        if s3.get("CloudWatchLoggingOptions", {}).get("Enabled") is not True:
            yield logical_id, "delivery errors are not logged to CloudWatch"
        if not s3.get("BufferingHints"):
            yield logical_id, "buffering is left to defaults; set it explicitly"


def _removal_policies(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, *sorted(STATEFUL_RESOURCE_TYPES)):
        deletion, replace = resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")
        if deletion not in ("Retain", "Delete") or deletion != replace:
            yield (
                logical_id,
                (
                    f"stateful {resource['Type']} has DeletionPolicy={deletion} "
                    f"UpdateReplacePolicy={replace}; "
                    "set both explicitly (the removal-policy aspect does)"
                ),
            )


# ---------------------------------------------------------------- SageMaker and access (N, H, I1)


def _notebook(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::SageMaker::NotebookInstance"):
        p = props(resource)
        if p.get("RootAccess") != "Disabled":
            yield logical_id, "root access is not disabled (the default is Enabled)"
        if p.get("DirectInternetAccess") != "Disabled":
            yield logical_id, "direct internet access is not disabled (the default is Enabled)"
        if not p.get("SubnetId"):
            yield logical_id, "the notebook is not in a subnet of the VPC"
        if not p.get("KmsKeyId"):
            yield logical_id, "the notebook volume is not encrypted with a customer key"
        imds = p.get("InstanceMetadataServiceConfiguration", {})
        if str(imds.get("MinimumInstanceMetadataServiceVersion")) != "2":
            yield logical_id, "the notebook allows IMDSv1"


def _endpoint_config(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::SageMaker::EndpointConfig"):
        p = props(resource)
        if not p.get("KmsKeyId"):
            yield logical_id, "the endpoint's storage is not encrypted with a customer key"
        capture = p.get("DataCaptureConfig")
        if capture is not None and not capture.get("KmsKeyId"):
            yield logical_id, "captured requests and responses are not encrypted with a customer key"


def _model_isolation(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::SageMaker::Model"):
        p = props(resource)
        if not p.get("VpcConfig"):
            yield logical_id, "the model does not run in the VPC"
        if p.get("EnableNetworkIsolation") is not True:
            yield logical_id, "the model container is not network-isolated"


def _no_full_access(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, resource in resources(template, "AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for arn in as_list(props(resource).get("ManagedPolicyArns")):
            text = flatten(arn)
            if ":aws:policy/" in text.replace("<AWS::Partition>", "aws") and "FullAccess" in text:
                yield logical_id, f"an AWS-managed FullAccess policy is attached ({text.rsplit('/', 1)[-1]})"
    for logical_id, resource in resources(template, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for statement in statements(props(resource).get("PolicyDocument")):
            actions = {a.lower() for a in as_list(statement.get("Action")) if isinstance(a, str)}
            passes = statement.get("Effect") == "Allow" and actions & {"iam:passrole", "iam:*", "*"}
            if passes and "iam:passedtoservice" not in condition_keys(statement):
                yield logical_id, "iam:PassRole without an iam:PassedToService condition"


def _notebook_lifecycle(template: Template) -> Iterator[tuple[str, str]]:
    configs = dict(resources(template, "AWS::SageMaker::NotebookInstanceLifecycleConfig"))
    for logical_id, resource in resources(template, "AWS::SageMaker::NotebookInstance"):
        p = props(resource)
        platform = p.get("PlatformIdentifier")
        if not (isinstance(platform, str) and platform.startswith(SUPPORTED_NOTEBOOK_PLATFORM_PREFIX)):
            yield logical_id, f"platform {platform!r} is not a supported Amazon Linux 2023 notebook platform"
        name = p.get("LifecycleConfigName")
        if name is None:
            yield logical_id, "no lifecycle configuration: nothing stops the notebook when it is idle"
            continue
        config = configs.get(target(name) or "")
        if config is None and not isinstance(name, str):
            yield logical_id, "the lifecycle configuration is not in this template and cannot be checked"
        elif config is not None and not any(h.get("Content") for h in as_list(props(config).get("OnStart"))):
            yield logical_id, "the lifecycle configuration has no OnStart script (the idle auto-stop)"


def _action_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def _boundaries(template: Template) -> set[str]:
    """Managed policies of this template used as permissions boundaries (ceilings that grant nothing)."""
    return {
        ref
        for _, role in resources(template, "AWS::IAM::Role")
        if (ref := target(props(role).get("PermissionsBoundary")))
    }


def _policy_documents(template: Template) -> Iterator[tuple[str, Any]]:
    """(logical id, policy document) of every identity policy that grants (boundaries excluded)."""
    boundaries = _boundaries(template)
    for logical_id, resource in resources(template, "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        if logical_id not in boundaries:
            yield logical_id, props(resource).get("PolicyDocument")
    for logical_id, resource in resources(template, "AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
        for inline in as_list(props(resource).get("Policies")):
            yield logical_id, inline.get("PolicyDocument")


def _notebook_url_scope(template: Template) -> Iterator[tuple[str, str]]:
    for logical_id, document in _policy_documents(template):
        for statement in statements(document):
            if statement.get("Effect") != "Allow":
                continue
            actions = [a for a in as_list(statement.get("Action")) if isinstance(a, str)]
            if not any(_action_matches(a, PRESIGNED_NOTEBOOK_URL) for a in actions):
                continue
            for resource in as_list(statement.get("Resource")):
                text = flatten(resource)
                if "*" in text or "?" in text:
                    yield logical_id, f"{PRESIGNED_NOTEBOOK_URL} is allowed on {text!r}, not on one notebook"


PRESIGNED_NOTEBOOK_URL: Final = "sagemaker:CreatePresignedNotebookInstanceUrl"
SUPPORTED_NOTEBOOK_PLATFORM_PREFIX: Final = "notebook-al2023-"

# The SageMaker condition keys a SageMaker role's permissions boundary must deny on (I2).
GUARDRAIL_KEYS: Final = frozenset(
    {
        "sagemaker:vpcsubnets",
        "sagemaker:vpcsecuritygroupids",
        "sagemaker:volumekmskey",
        "sagemaker:outputkmskey",
        "sagemaker:networkisolation",
        "sagemaker:intercontainertrafficencryption",
        "sagemaker:rootaccess",
        "sagemaker:directinternetaccess",
    }
)


def _trusts(role: Mapping[str, Any], service: str) -> bool:
    for statement in statements(props(role).get("AssumeRolePolicyDocument")):
        principal = statement.get("Principal")
        services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
        if service in [flatten(s) for s in services]:
            return True
    return False


def _sagemaker_boundaries(template: Template) -> Iterator[tuple[str, str]]:
    policies = dict(resources(template, "AWS::IAM::ManagedPolicy"))
    for logical_id, role in resources(template, "AWS::IAM::Role"):
        if not _trusts(role, "sagemaker.amazonaws.com"):
            continue
        boundary = props(role).get("PermissionsBoundary")
        if boundary is None:
            yield logical_id, "the SageMaker role has no permissions boundary"
            continue
        policy = policies.get(target(boundary) or "")
        if policy is None:
            yield logical_id, "the SageMaker role's boundary is not in this template and cannot be checked"
            continue
        denied = {
            key
            for statement in statements(props(policy).get("PolicyDocument"))
            if statement.get("Effect") == "Deny"
            for key in condition_keys(statement)
        }
        missing = sorted(GUARDRAIL_KEYS - denied)
        if missing:
            yield logical_id, f"the SageMaker role's permissions boundary denies nothing on {missing}"


def _event_targets(template: Template) -> Iterator[tuple[str, str]]:
    functions = {logical_id for logical_id, _ in resources(template, "AWS::Lambda::Function")}
    for logical_id, rule in resources(template, "AWS::Events::Rule"):
        for item in as_list(props(rule).get("Targets")):
            if target(item.get("Arn")) not in functions:
                continue
            retry = item.get("RetryPolicy") or {}
            if not (item.get("DeadLetterConfig") or {}).get("Arn"):
                yield logical_id, f"target {item.get('Id')} has no dead-letter queue: failed events vanish"
            if "MaximumRetryAttempts" not in retry or "MaximumEventAgeInSeconds" not in retry:
                yield logical_id, f"target {item.get('Id')} keeps the default retry policy (24 h, 185 tries)"


# Stand-ins for pseudo parameters while reading an embedded pipeline definition: an image URI
# written with Fn::Sub still reads as a private ECR URI, and every other reference as a non-empty value.
_PSEUDO: Final = {
    "AWS::AccountId": "000000000000",
    "AWS::Region": "us-east-1",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::Partition": "aws",
}
_SUB_VARIABLE: Final = re.compile(r"\$\{([^}!]+)\}")


def _stand_in(value: Any) -> str:
    name = target(value) or next(iter(value), "value")
    return "cfn-" + re.sub(r"[^A-Za-z0-9]", "", str(name))


def resolve_text(value: Any) -> str:
    """A CloudFormation string (``Fn::Join``, ``Fn::Sub``, references) as text, references as stand-ins."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(resolve_text(part) for part in parts)
        if "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, variables = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in variables:
                    return resolve_text(variables[name])
                return _PSEUDO.get(name, "cfn-" + re.sub(r"[^A-Za-z0-9]", "", name))

            return _SUB_VARIABLE.sub(substitute, str(text))
        if value.get("Ref") in _PSEUDO:
            return _PSEUDO[value["Ref"]]
        return _stand_in(value)
    return str(value)


@functools.lru_cache(maxsize=16)
def _definition_findings(text: str) -> tuple[tuple[str, str], ...]:
    """(control, message) of every blocking perimeter finding (T1-T6) in a definition's JSON text.

    The API-shape checks of ``rookery pipeline validate`` need concrete values, which an embedded
    definition has only after deployment; the tests run them on the builder's output, which the
    embedded body equals apart from the substituted resources.
    """
    from pipelines import validate_definition  # noqa: PLC0415 - botocore's model: only when a pipeline exists

    try:
        definition = json.loads(text)
    except ValueError as exc:
        return (("T1", f"the PipelineDefinitionBody is not JSON ({exc}); no job in it can be verified"),)
    if not isinstance(definition, Mapping) or not isinstance(definition.get("Steps"), list):
        return (("T1", "the PipelineDefinitionBody has no Steps list; it is not a pipeline definition"),)
    return tuple(
        (f.control, f"step {f.step}, {f.field}: {f.message}")
        for f in validate_definition(definition)
        if f.blocking and f.control.startswith("T")
    )


def _pipeline_bodies(template: Template) -> Iterator[tuple[str, str, str]]:
    for logical_id, resource in resources(template, "AWS::SageMaker::Pipeline"):
        definition = props(resource).get("PipelineDefinition") or {}
        body = definition.get("PipelineDefinitionBody")
        if body is None:
            yield logical_id, "T1", "the definition is not embedded (PipelineDefinitionBody): unaudited"
            continue
        for control, message in _definition_findings(resolve_text(body)):
            yield logical_id, control, message


def _perimeter(control: str) -> Check:
    def check(template: Template) -> Iterator[tuple[str, str]]:
        for logical_id, found, message in _pipeline_bodies(template):
            if found == control:
                yield logical_id, message

    return check


_PERIMETER_RULES: Final = (
    ("T1", "Pipeline jobs run in the stage's VPC", "set VpcConfig / NetworkConfig"),
    ("T2", "Pipeline jobs and models are network-isolated", "set EnableNetworkIsolation to true"),
    ("T3", "Pipeline jobs encrypt inter-container traffic", "set EnableInterContainerTrafficEncryption"),
    ("T4", "Pipeline jobs use KMS keys for volumes and outputs", "set VolumeKmsKeyId and output KmsKeyId"),
    ("T5", "Spot training has a checkpoint URI and a bounded wait", "set CheckpointConfig and MaxWaitTime"),
    ("T6", "Pipeline images come from the project's private ECR repository", "use the project image asset"),
)


ROOKERY_RULES: Final = RulePack(
    PACK_NAME,
    (
        Rule("Rookery-V1", "V1", "No path to or from the internet", "remove gateways, NAT and default routes",
             _no_internet_path),
        Rule("Rookery-V1b", "V1", "VPC flow logs to an encrypted, retained log group",
             "add a flow log of ALL traffic to a KMS-encrypted log group with retention", _flow_logs),
        Rule("Rookery-V2", "V2", "Every VPC endpoint carries a policy", "add an endpoint policy",
             _endpoint_policy),
        Rule("Rookery-V2b", "V2", "Interface endpoints admit HTTPS from security groups only",
             "replace address-range rules with rules from the workload security groups", _endpoint_ingress),
        Rule("Rookery-V2c", "V2", "Endpoint policies pin the principal's account",
             "add an aws:PrincipalAccount condition", _endpoint_principals),
        Rule("Rookery-D2", "D2", "The S3 gateway endpoint names its buckets", "list the bucket ARNs",
             _s3_gateway_buckets),
        Rule("Rookery-D1b", "D1b", "Data buckets deny access from outside the VPC endpoint",
             "add a Deny statement conditioned on aws:SourceVpce", _vpc_only_buckets),
        Rule("Rookery-D1b2", "D1b", "Every exception to the data buckets' VPC-endpoint deny has a reason",
             "give the TrustedPrincipal or TrustedService its reason (infra/constructs/data_lake.py)",
             _vpc_exception_reasons),
        Rule("Rookery-D3", "D3", "Keys rotate; key policies name their principals",
             "enable rotation; condition or narrow '*' principals", _key_policies),
        Rule("Rookery-D4", "D4", "Glue catalog encryption and crawler security configuration",
             "add DataCatalogEncryptionSettings and a SecurityConfiguration", _catalog_encryption),
        Rule("Rookery-D5", "D5", "Athena workgroup enforces KMS-encrypted results in the project bucket",
             "enforce the configuration and set SSE_KMS with a key", _athena_workgroup),
        Rule("Rookery-D6", "D6", "Firehose: customer key, KMS delivery, error prefix, logging, buffering",
             "set the missing destination options", _firehose),
        Rule("Rookery-D7", "D7", "Stateful resources have explicit removal policies",
             "let the removal-policy aspect cover the resource type", _removal_policies),
        Rule("Rookery-N1", "N1-N5", "Notebook: VPC, no internet, no root, KMS, IMDSv2",
             "set RootAccess/DirectInternetAccess Disabled, SubnetId, KmsKeyId, IMDSv2", _notebook),
        Rule("Rookery-H1", "H1", "Endpoint config and data capture encrypted with a customer key",
             "set KmsKeyId (and DataCaptureConfig.KmsKeyId)", _endpoint_config),
        Rule("Rookery-H2", "H2", "Models run in the VPC with network isolation",
             "set VpcConfig and EnableNetworkIsolation", _model_isolation),
        Rule("Rookery-I1", "I1", "No FullAccess managed policies; PassRole only with iam:PassedToService",
             "grant scoped actions; condition PassRole on the service", _no_full_access),
        Rule("Rookery-N5", "N1-N5", "Notebook: supported platform and an idle auto-stop lifecycle config",
             "use an Amazon Linux 2023 platform and a lifecycle configuration with an OnStart script",
             _notebook_lifecycle),
        Rule("Rookery-N6", "N6", "Opening Jupyter is allowed on named notebooks only",
             f"scope {PRESIGNED_NOTEBOOK_URL} to the notebook's ARN", _notebook_url_scope),
        Rule("Rookery-I2", "I1",
             "SageMaker roles' boundary denies jobs without VPC, KMS, isolation, traffic encryption",
             "apply the guardrails permissions boundary", _sagemaker_boundaries),
        Rule("Rookery-L2", "L1", "EventBridge targets of Lambdas: dead-letter queue, bounded retry policy",
             "set the target's DeadLetterConfig and RetryPolicy", _event_targets),
        *(Rule(f"Rookery-{control}", control, title, fix, _perimeter(control))
          for control, title, fix in _PERIMETER_RULES),
    ),
)  # fmt: skip

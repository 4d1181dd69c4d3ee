"""rookery's data rules (D1b, D3-D7): the VPC-endpoint deny on data buckets and the reason behind each
exception, key policies, catalog encryption, Athena, Firehose, removal policies."""

from __future__ import annotations

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
from infra.stateful import STATEFUL_RESOURCE_TYPES

# Template metadata of a data bucket's policy: the written reason behind each exception to D1b's deny,
# one per excepted principal (in order) and one per service whose requests skip the endpoint.
EXCEPTION_REASONS: Final = "rookery:vpc-endpoint-exceptions"
SERVICE_EXCEPTION_REASONS: Final = "rookery:vpc-endpoint-service-exceptions"  # [{"service", "reason"}]


@rule(
    id="Rookery-D1b",
    control="D1b",
    title="Data buckets deny access from outside the VPC endpoint",
    fix="add a Deny statement conditioned on aws:SourceVpce",
)
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


@rule(
    id="Rookery-D1b2",
    control="D1b",
    title="Every exception to the data buckets' VPC-endpoint deny has a reason",
    fix="give the TrustedPrincipal or TrustedService its reason (infra/constructs/data_lake.py)",
)
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


@rule(
    id="Rookery-D3",
    control="D3",
    title="Keys rotate; key policies name their principals",
    fix="enable rotation; condition or narrow '*' principals",
)
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


@rule(
    id="Rookery-D4",
    control="D4",
    title="Glue catalog encryption and crawler security configuration",
    fix="add DataCatalogEncryptionSettings and a SecurityConfiguration",
)
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


@rule(
    id="Rookery-D5",
    control="D5",
    title="Athena workgroup enforces KMS-encrypted results in the project bucket",
    fix="enforce the configuration and set SSE_KMS with a key",
)
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


@rule(
    id="Rookery-D6",
    control="D6",
    title="Firehose: customer key, KMS delivery, error prefix, logging, buffering",
    fix="set the missing destination options",
)
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


@rule(
    id="Rookery-D7",
    control="D7",
    title="Stateful resources have explicit removal policies",
    fix="let the removal-policy aspect cover the resource type",
)
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

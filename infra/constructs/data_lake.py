"""Controls D1, D1b and D3: the keys and buckets of the data lake.

- One customer-managed key per purpose: ``data`` (raw and curated records, query results,
  the catalog, the stream), ``artifacts`` (models, pipeline outputs), ``logs`` (CloudWatch).
- Raw, curated and artifacts buckets: SSE-KMS with bucket keys, TLS 1.2+ only, all public
  access blocked, owner-enforced objects, versioning, server access logs, lifecycle rules.
- An access-log bucket for those logs (SSE-S3: S3 log delivery cannot write SSE-KMS targets).
- D1b: ``restrict_to_vpc_endpoint()`` denies every S3 call on the data buckets that does not
  come through the project's gateway endpoint, except the trusted principals it is given
  (services that work outside the VPC on the project's behalf, and the deployment role) and
  the requests ``VIA_SERVICES`` names (Athena), each with its written reason in the template. An
  exception may be limited to one key prefix (SageMaker's data capture writes only ``capture/``).
- D7: buckets and their objects survive ``cdk destroy`` unless ``DataLakeProps.destroy_on_delete``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from aws_cdk import Duration, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.audit.acknowledge import acknowledge, acknowledge_guard
from infra.audit.rules import EXCEPTION_REASONS, SERVICE_EXCEPTION_REASONS
from infra.constructs.keys import (
    MAX_PENDING_WINDOW_DAYS,
    KeyProps,
    KeyUser,
    PurposeKey,
    check_pending_window,
)
from infra.constructs.props import PropsError, check_qualifier
from infra.constructs.removal import stateful_removal_policy
from stage.names import ACCESS_LOG_BUCKET, ALL_BUCKETS, DATA_BUCKETS

# Where the register of D1b's exceptions travels with the template (the audit report reads both).
TRUSTED_PRINCIPALS_METADATA: Final = EXCEPTION_REASONS
VIA_SERVICES_METADATA: Final = SERVICE_EXCEPTION_REASONS


@dataclass(frozen=True)
class TrustedPrincipal:
    """A principal allowed to reach the data buckets without the VPC endpoint, and why."""

    arn: str  # an ARN or ARN pattern (tokens allowed)
    reason: str
    buckets: tuple[str, ...] = DATA_BUCKETS  # which data buckets (by purpose) it may reach that way
    # Only objects under this key prefix (e.g. "capture/"): a second deny statement keeps the
    # principal to it outside the VPC endpoint. None: the whole bucket.
    prefix: str | None = None

    def __post_init__(self) -> None:
        if self.prefix is not None and (not self.prefix.endswith("/") or self.prefix.startswith("/")):
            raise ValueError(
                f"TrustedPrincipal.prefix = {self.prefix!r}: must be a key prefix like 'capture/' "
                "(no leading '/', ends with '/')"
            )

    @property
    def register_entry(self) -> str:
        """The reason as the exceptions register records it (with the prefix it is limited to)."""
        if self.prefix is None:
            return self.reason
        return f"{self.reason} (limited to objects under {self.prefix}; everything else is still denied)"


@dataclass(frozen=True)
class TrustedService:
    """A service whose requests made with the caller's credentials (``aws:CalledVia``) skip the endpoint."""

    service: str  # the service principal, as aws:CalledVia lists it
    reason: str
    buckets: tuple[str, ...] = DATA_BUCKETS


# D1b names principals; this is the one exception by path instead. It is needed, not a convenience:
# Athena's own S3 requests never pass the project's gateway endpoint, so without it no query runs.
VIA_SERVICES: Final = (
    TrustedService(
        service="athena.amazonaws.com",
        reason=(
            "Athena reads the raw and curated tables and writes query results into the artifacts bucket "
            "with the caller's own credentials but from Athena's network, so those requests never carry "
            "the project's aws:SourceVpce (the Athena user guide, 'Control access to Amazon S3 from "
            "Athena': S3 access cannot be restricted by aws:SourceVpc or aws:SourceVpce). Only the deny "
            "is lifted and nothing is granted: the caller still needs an IAM allow in this account on the "
            "bucket and its KMS key (no other account is granted any), and the stacks grant those only to "
            "the project's roles"
        ),
    ),
)


@dataclass(frozen=True, kw_only=True)
class DataKeysProps:
    qualifier: str
    pending_window_days: int = MAX_PENDING_WINDOW_DAYS
    """Deletion window of the three keys; see ``KeyProps.pending_window_days``."""

    def __post_init__(self) -> None:
        check_qualifier(self)
        check_pending_window(self, "pending_window_days")


class DataKeys(Construct):
    """Customer-managed keys per purpose; exposes ``data``, ``artifacts``, ``logs``.

    ``restrict_use()`` limits the data and artifacts keys to the project's roles (K1); the logs key
    serves CloudWatch Logs, which encrypts for every log group of the stage.
    """

    def __init__(self, scope: Construct, construct_id: str, *, props: DataKeysProps) -> None:
        super().__init__(scope, construct_id)

        def key(construct_id: str, purpose: str, description: str, *, logs: bool = False) -> PurposeKey:
            return PurposeKey(
                self,
                construct_id,
                props=KeyProps(
                    qualifier=props.qualifier,
                    purpose=purpose,
                    description=description,
                    for_cloudwatch_logs=logs,
                    pending_window_days=props.pending_window_days,
                ),
            )

        self._restricted = (
            key("Data", "data", "raw and curated records, query results"),
            key("Artifacts", "artifacts", "models and pipeline outputs"),
        )
        self.data, self.artifacts = (k.key for k in self._restricted)
        self.logs = key("Logs", "logs", "CloudWatch Logs", logs=True).key

    def restrict_use(self, users: Sequence[KeyUser]) -> None:
        """K1: only ``users`` (and AWS service principals) of this account use the data and artifacts keys."""
        for key in self._restricted:
            key.restrict_use(users)


@dataclass(frozen=True, kw_only=True)
class DataLakeProps:
    """Names and lifecycle of the lake's buckets (the stage's ``[data]`` settings). Encryption, TLS,
    public access, versioning and access logging are not options."""

    bucket_names: Mapping[str, str]
    """Every bucket by purpose (exactly ``stage.names.ALL_BUCKETS``); may hold account/region tokens."""
    raw_expiration_days: int
    noncurrent_version_expiration_days: int
    infrequent_access_after_days: int
    access_log_expiration_days: int
    destroy_on_delete: bool = False
    """Secure default: buckets and their objects survive ``cdk destroy`` (RETAIN). True sets DESTROY and
    empties the buckets on delete; only a stage that allows deletion, with ``-c destroy_data=true``."""

    def __post_init__(self) -> None:
        if set(self.bucket_names) != set(ALL_BUCKETS):
            raise PropsError(
                self, "bucket_names", f"name exactly the buckets {list(ALL_BUCKETS)}, by purpose"
            )
        object.__setattr__(self, "bucket_names", MappingProxyType(dict(self.bucket_names)))
        for days in (
            "raw_expiration_days",
            "noncurrent_version_expiration_days",
            "infrequent_access_after_days",
            "access_log_expiration_days",
        ):
            if getattr(self, days) < 1:
                raise PropsError(self, days, "lifecycle rules count whole days; use 1 or more")


class DataLake(Construct):
    """The lake's buckets. Exposes ``buckets`` (by purpose: raw, curated, artifacts) and ``access_logs``."""

    def __init__(self, scope: Construct, construct_id: str, *, props: DataLakeProps, keys: DataKeys) -> None:
        super().__init__(scope, construct_id)
        removal = stateful_removal_policy(destroy=props.destroy_on_delete)
        destroy = props.destroy_on_delete

        self.access_logs = s3.Bucket(
            self,
            "AccessLogBucket",
            bucket_name=props.bucket_names[ACCESS_LOG_BUCKET],
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(props.access_log_expiration_days),
                    noncurrent_version_expiration=Duration.days(props.noncurrent_version_expiration_days),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                )
            ],
            removal_policy=removal,
            auto_delete_objects=destroy,
        )
        acknowledge(
            self.access_logs,
            "NIST.800.53.R5::NIST.800.53.R5-S3DefaultEncryptionKMS",
            "S3 server access log delivery can only write to targets encrypted with SSE-S3, not SSE-KMS",
        )
        acknowledge_guard(
            self.access_logs,
            "s3_bucket_default_encryption_kms_check",
            "S3 server access log delivery can only write to targets encrypted with SSE-S3, not SSE-KMS",
        )
        acknowledge_guard(
            self.access_logs,
            "s3_bucket_logging_enabled_check",
            "this bucket receives the other buckets' server access logs; logging it into itself would "
            "log every delivery of a log, without end",
        )

        keys_by_purpose: Mapping[str, kms.IKey] = {
            "raw": keys.data,
            "curated": keys.data,
            "artifacts": keys.artifacts,
        }
        self.buckets: Mapping[str, s3.Bucket] = MappingProxyType(
            {
                purpose: s3.Bucket(
                    self,
                    f"{purpose.capitalize()}Bucket",
                    bucket_name=props.bucket_names[purpose],
                    encryption=s3.BucketEncryption.KMS,
                    encryption_key=keys_by_purpose[purpose],
                    bucket_key_enabled=True,
                    enforce_ssl=True,
                    minimum_tls_version=1.2,
                    block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                    object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                    versioned=True,
                    server_access_logs_bucket=self.access_logs,
                    server_access_logs_prefix=f"{purpose}/",
                    lifecycle_rules=_lifecycle(props, purpose),
                    removal_policy=removal,
                    auto_delete_objects=destroy,
                )
                for purpose in DATA_BUCKETS
            }
        )
        # The ML stack's trigger listens for "Object Created" on the raw bucket. Set natively in
        # CloudFormation: CDK's event_bridge_enabled would add a custom-resource Lambda for it.
        raw = self.buckets["raw"].node.default_child
        assert isinstance(raw, s3.CfnBucket)
        raw.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )

        for purpose, bucket in (*self.buckets.items(), (ACCESS_LOG_BUCKET, self.access_logs)):
            acknowledge(
                bucket,
                "NIST.800.53.R5::NIST.800.53.R5-S3BucketReplicationEnabled",
                f"the {purpose} bucket stays in the stage's one region by design; S3 stores it across AZs "
                "and versioning plus retention protect against deletion",
            )
            acknowledge_guard(
                bucket,
                "s3_bucket_object_lock_enabled_check",
                f"the {purpose} bucket's objects must expire and be deletable (lifecycle rules, the stage's "
                "teardown); versioning, the TLS-only and VPC-endpoint bucket policies and the keys' use "
                "restriction protect them, and Object Lock would keep them past their lifecycle",
            )
            if purpose != "raw":  # the raw bucket notifies EventBridge (the pipeline trigger)
                acknowledge_guard(
                    bucket,
                    "s3_event_notifications_enabled_check",
                    f"nothing reacts to new objects in the {purpose} bucket: only the raw bucket's "
                    "notifications start work (the pipeline trigger); access logs record every request",
                )
        provider = Stack.of(self).node.try_find_child(_AUTO_DELETE_PROVIDER)
        if provider is not None:
            acknowledge_guard(
                provider,
                "lambda_inside_vpc_check",
                "CDK's auto-delete provider runs only on an approved teardown (-c destroy_data=true) and "
                "calls S3 from Lambda's network; the buckets' policies name it as an exception (D1b)",
            )

    def restrict_to_vpc_endpoint(
        self,
        *,
        endpoint_id: str,
        trusted: Sequence[TrustedPrincipal],
        via_services: Sequence[TrustedService] = VIA_SERVICES,
    ) -> None:
        """D1b: deny data-bucket calls not via ``endpoint_id``, except ``trusted`` and ``via_services``."""
        if not trusted:
            raise ValueError(
                "restrict_to_vpc_endpoint needs the deployment role among the trusted principals"
            )
        named = {b for t in trusted for b in t.buckets} | {b for s in via_services for b in s.buckets}
        unknown = sorted(named - set(self.buckets))
        if unknown:
            raise ValueError(
                f"trusted principals or services name unknown buckets {unknown}; "
                f"choose from {list(self.buckets)}"
            )
        trusted = [*trusted, *_auto_delete_principal(Stack.of(self))]
        for purpose, bucket in self.buckets.items():
            exceptions = [t for t in trusted if purpose in t.buckets]
            services = [s for s in via_services if purpose in s.buckets]
            conditions: dict[str, object] = {
                "StringNotEquals": {"aws:SourceVpce": endpoint_id},
                "ArnNotLike": {"aws:PrincipalArn": [t.arn for t in exceptions]},
            }
            if services:
                # Deny unless a listed service made the request on the caller's behalf. A request with
                # no aws:CalledVia at all is still denied (ForAllValues over an absent key is true).
                conditions["ForAllValues:StringNotEquals"] = {"aws:CalledVia": [s.service for s in services]}
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="DenyOutsideProjectVpcEndpoint",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:*"],
                    resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
                    conditions=conditions,
                )
            )
            for prefix in sorted({t.prefix for t in exceptions if t.prefix is not None}):
                bucket.add_to_resource_policy(
                    _prefix_limit(bucket, endpoint_id, prefix, [t for t in exceptions if t.prefix == prefix])
                )
            policy = bucket.policy.node.default_child if bucket.policy else None
            assert isinstance(policy, s3.CfnBucketPolicy)
            # The register of exceptions travels with the template (the audit report reads it).
            policy.add_metadata(TRUSTED_PRINCIPALS_METADATA, [t.register_entry for t in exceptions])
            if services:
                policy.add_metadata(
                    VIA_SERVICES_METADATA, [{"service": s.service, "reason": s.reason} for s in services]
                )
        self.trusted_principals = tuple(trusted)
        self.via_services = tuple(via_services)


def prefix_limit_sid(prefix: str) -> str:
    """``capture/`` -> ``DenyOutsideCapturePrefixWithoutVpcEndpoint``."""
    words = "".join(w.capitalize() for w in re.split(r"[^A-Za-z0-9]+", prefix) if w)
    return f"DenyOutside{words}PrefixWithoutVpcEndpoint"


def _prefix_limit(
    bucket: s3.IBucket, endpoint_id: str, prefix: str, principals: Sequence[TrustedPrincipal]
) -> iam.PolicyStatement:
    """Deny ``principals`` everything but objects under ``prefix`` when they skip the VPC endpoint.

    The main statement excepts them from the endpoint deny for the whole bucket; this one takes the
    rest of the bucket back (``NotResource``: in a bucket policy, every resource of this bucket but
    the prefix's objects).
    """
    return iam.PolicyStatement(
        sid=prefix_limit_sid(prefix),
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["s3:*"],
        not_resources=[bucket.arn_for_objects(f"{prefix}*")],
        conditions={
            "StringNotEquals": {"aws:SourceVpce": endpoint_id},
            "ArnLike": {"aws:PrincipalArn": [t.arn for t in principals]},
        },
    )


def deployment_role(scope: Construct) -> TrustedPrincipal:
    """The CloudFormation execution role of the CDK bootstrap: it must manage the buckets it deploys."""
    synthesizer = Stack.of(scope).synthesizer
    arn = getattr(synthesizer, "cloud_formation_execution_role_arn", None)
    if not isinstance(arn, str):
        raise ValueError(
            "the stack synthesizer has no CloudFormation execution role; use DefaultStackSynthesizer"
        )
    return TrustedPrincipal(
        arn=Fn.sub(arn),
        reason="CloudFormation execution role of the CDK bootstrap: creates, updates and deletes the buckets",
    )


def _lifecycle(data: DataLakeProps, purpose: str) -> list[s3.LifecycleRule]:
    rules = [
        s3.LifecycleRule(
            id="tidy-versions-and-uploads",
            noncurrent_version_expiration=Duration.days(data.noncurrent_version_expiration_days),
            abort_incomplete_multipart_upload_after=Duration.days(7),
        )
    ]
    if purpose in ("raw", "curated"):
        rules.append(
            s3.LifecycleRule(
                id="infrequent-access",
                transitions=[
                    s3.Transition(
                        storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                        transition_after=Duration.days(data.infrequent_access_after_days),
                    )
                ],
            )
        )
    if purpose == "raw":
        rules.append(s3.LifecycleRule(id="expire-raw", expiration=Duration.days(data.raw_expiration_days)))
    return rules


_AUTO_DELETE_PROVIDER = "Custom::S3AutoDeleteObjectsCustomResourceProvider"


def _auto_delete_principal(stack: Stack) -> list[TrustedPrincipal]:
    """CDK's auto-delete provider empties the buckets from outside the VPC on an approved teardown."""
    provider = stack.node.try_find_child(_AUTO_DELETE_PROVIDER)
    if provider is None:
        return []
    role = provider.node.find_child("Role")
    return [
        TrustedPrincipal(
            arn=Fn.get_att(stack.get_logical_id(role), "Arn").to_string(),  # type: ignore[arg-type]
            reason="CDK's auto-delete provider empties the buckets on teardown (-c destroy_data=true)",
        )
    ]

"""Controls D1, D1b and D3: the keys and buckets of the data lake.

- One customer-managed key per purpose: ``data`` (raw and curated records, query results,
  the catalog, the stream), ``artifacts`` (models, pipeline outputs), ``logs`` (CloudWatch).
- Raw, curated and artifacts buckets: SSE-KMS with bucket keys, TLS 1.2+ only, all public
  access blocked, owner-enforced objects, versioning, server access logs, lifecycle rules.
- An access-log bucket for those logs (SSE-S3: S3 log delivery cannot write SSE-KMS targets).
- D1b: ``restrict_to_vpc_endpoint()`` denies every S3 call on the data buckets that does not
  come through the project's gateway endpoint, except the trusted principals it is given
  (services that work outside the VPC on the project's behalf, and the deployment role) and
  Athena, which reads and writes S3 with the caller's credentials from its own network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from aws_cdk import Duration, Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.audit.acknowledge import acknowledge
from infra.constructs.keys import PurposeKey
from infra.constructs.removal import stateful_removal_policy
from infra.naming import ACCESS_LOG_BUCKET, DATA_BUCKETS, bucket_name
from rookery.config import Stage

TRUSTED_PRINCIPALS_METADATA: Final = "rookery:vpc-endpoint-exceptions"


@dataclass(frozen=True)
class TrustedPrincipal:
    """A principal allowed to reach the data buckets without the VPC endpoint, and why."""

    arn: str  # an ARN or ARN pattern (tokens allowed)
    reason: str
    buckets: tuple[str, ...] = DATA_BUCKETS  # which data buckets (by purpose) it may reach that way


class DataKeys(Construct):
    """Customer-managed keys per purpose; exposes ``data``, ``artifacts``, ``logs``."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage) -> None:
        super().__init__(scope, construct_id)
        self.data = PurposeKey(
            self, "Data", stage=stage, purpose="data", description="raw and curated records, query results"
        ).key
        self.artifacts = PurposeKey(
            self, "Artifacts", stage=stage, purpose="artifacts", description="models and pipeline outputs"
        ).key
        self.logs = PurposeKey(
            self, "Logs", stage=stage, purpose="logs", description="CloudWatch Logs", for_cloudwatch_logs=True
        ).key


class DataLake(Construct):
    """The lake's buckets. Exposes ``buckets`` (by purpose: raw, curated, artifacts) and ``access_logs``."""

    def __init__(self, scope: Construct, construct_id: str, *, stage: Stage, keys: DataKeys) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        data = stage.data
        removal = stateful_removal_policy(stage)
        destroy = stage.removal_destroys_data

        def name(purpose: str) -> str:
            return bucket_name(stage, purpose, account=stack.account, region=stack.region)

        self.access_logs = s3.Bucket(
            self,
            "AccessLogBucket",
            bucket_name=name(ACCESS_LOG_BUCKET),
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(data.access_log_expiration_days),
                    noncurrent_version_expiration=Duration.days(data.noncurrent_version_expiration_days),
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
                    bucket_name=name(purpose),
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
                    lifecycle_rules=_lifecycle(stage, purpose),
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

    def restrict_to_vpc_endpoint(self, *, endpoint_id: str, trusted: Sequence[TrustedPrincipal]) -> None:
        """D1b: deny every data-bucket call that does not come through ``endpoint_id``, except ``trusted``."""
        if not trusted:
            raise ValueError(
                "restrict_to_vpc_endpoint needs the deployment role among the trusted principals"
            )
        unknown = sorted({b for t in trusted for b in t.buckets} - set(self.buckets))
        if unknown:
            raise ValueError(
                f"trusted principals name unknown buckets {unknown}; choose from {list(self.buckets)}"
            )
        trusted = [*trusted, *_auto_delete_principal(Stack.of(self))]
        for purpose, bucket in self.buckets.items():
            exceptions = [t for t in trusted if purpose in t.buckets]
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="DenyOutsideProjectVpcEndpoint",
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=["s3:*"],
                    resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
                    conditions={
                        "StringNotEquals": {"aws:SourceVpce": endpoint_id},
                        "ArnNotLike": {"aws:PrincipalArn": [t.arn for t in exceptions]},
                        # Athena reads data and writes results with the caller's credentials from its
                        # own network; the caller still needs IAM permission and the key.
                        "ForAllValues:StringNotEquals": {"aws:CalledVia": ["athena.amazonaws.com"]},
                    },
                )
            )
            policy = bucket.policy.node.default_child if bucket.policy else None
            assert isinstance(policy, s3.CfnBucketPolicy)
            # The register of exceptions travels with the template (the audit report reads it).
            policy.add_metadata(TRUSTED_PRINCIPALS_METADATA, [t.reason for t in exceptions])
        self.trusted_principals = tuple(trusted)


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


def _lifecycle(stage: Stage, purpose: str) -> list[s3.LifecycleRule]:
    data = stage.data
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

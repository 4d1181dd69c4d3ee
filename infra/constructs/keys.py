"""Controls D3 and K1: one customer-managed KMS key per purpose, with rotation and a narrow key policy.

Secure defaults (``KeyProps``): rotation always on; the key policy keeps CDK's default statement
(the account root, so IAM policies written by ``grant*()`` take effect and the account keeps
administering the key) and trusts no service; deletion waits the longest window KMS allows (30
days). Keys that encrypt CloudWatch Logs (``for_cloudwatch_logs``) also trust the regional Logs
service, but only for log groups of this account and region (encryption context).

K1, in every key's policy:

- ``DenyGrantsNotForAwsResources``: nobody creates a grant unless an AWS service integrated with
  KMS asks for it on the caller's behalf (``kms:GrantIsForAWSResource``: SageMaker for job and
  notebook volumes, Firehose for its stream) or the caller is an AWS service principal. This is
  the statement AWS Control Tower's CT.KMS.PR.3 requires, in the shape it checks.
- ``PurposeKey.restrict_use()`` (the data and artifacts keys): principals of this account may
  encrypt, decrypt, generate data keys and create grants only if they are one of the named
  ``KeyUser`` patterns (the project's roles, the deployment role); AWS service principals are not
  affected (``aws:PrincipalIsAWSService``). Administration (``kms:*`` for the account root, key
  policy changes, deletion schedules) is left alone, so the account can never lock itself out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.constructs.props import PropsError, check_qualifier
from stage.names import qualified_key_alias

# KMS waits 7 to 30 days before it deletes a key scheduled for deletion.
MIN_PENDING_WINDOW_DAYS: Final = 7
MAX_PENDING_WINDOW_DAYS: Final = 30
_PURPOSE: Final = re.compile(r"^[a-z][a-z0-9-]*$")
# K1: the cryptographic operations ``restrict_use()`` limits to the key's users (not administration,
# not DescribeKey: CloudFormation and the console describe keys they never use).
USE_ACTIONS: Final = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
    "kms:CreateGrant",
)
DENY_GRANTS_SID: Final = "DenyGrantsNotForAwsResources"
DENY_USE_SID: Final = "DenyUseOutsideProjectRoles"
# Where the key users and their reasons travel with the template (the audit report can read them).
KEY_USERS_METADATA: Final = "rookery:key-users"


def check_pending_window(props: object, field: str) -> None:
    days = getattr(props, field)
    if not MIN_PENDING_WINDOW_DAYS <= days <= MAX_PENDING_WINDOW_DAYS:
        raise PropsError(
            props,
            field,
            f"KMS waits {MIN_PENDING_WINDOW_DAYS} to {MAX_PENDING_WINDOW_DAYS} days before deleting a key; "
            f"use a value in that range ({MAX_PENDING_WINDOW_DAYS} unless the data may be lost sooner)",
        )


@dataclass(frozen=True, kw_only=True)
class KeyProps:
    """One key: its purpose (alias ``alias/<qualifier>/<purpose>``) and how long its deletion waits."""

    qualifier: str
    purpose: str  # ``data``, ``artifacts``, ``logs``, ``flow-logs``, ...
    description: str
    for_cloudwatch_logs: bool = False
    """Secure default: the key trusts no service principal. True only for a key that encrypts log
    groups; then CloudWatch Logs of this account and region may use it (encryption context)."""
    pending_window_days: int = MAX_PENDING_WINDOW_DAYS
    """Secure default: the longest window, so a deletion (only ever on an approved teardown) can be
    cancelled for 30 days; the stacks shorten it to 7 outside production."""

    def __post_init__(self) -> None:
        check_qualifier(self)
        if not _PURPOSE.match(self.purpose):
            raise PropsError(
                self, "purpose", "is part of the key alias: lower-case letters, digits and '-', e.g. 'data'"
            )
        if not self.description:
            raise PropsError(self, "description", "say what the key encrypts, e.g. 'models and outputs'")
        check_pending_window(self, "pending_window_days")


@dataclass(frozen=True)
class KeyUser:
    """Principals of this account that may use a restricted key: an ARN or ARN pattern (``aws:PrincipalArn``)
    and why they need the key."""

    arn: str  # may hold tokens, e.g. Fn::Sub of the account
    reason: str

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError(f"key user {self.arn!r} needs a reason: say what it encrypts or decrypts")


def deny_grants_not_for_aws_resources() -> iam.PolicyStatement:
    """K1 / CT.KMS.PR.3: no grant unless an integrated AWS service creates it or an AWS service asks."""
    return iam.PolicyStatement(
        sid=DENY_GRANTS_SID,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=["kms:CreateGrant"],
        resources=["*"],  # in a key policy, "*" means this key
        conditions={
            "BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}
        },
    )


def deny_use_outside(users: Sequence[KeyUser], account: str) -> iam.PolicyStatement:
    """K1: principals of ``account`` that match none of ``users`` may not use the key."""
    if not users:
        raise ValueError("restrict_use needs the key's users (at least the deployment role)")
    return iam.PolicyStatement(
        sid=DENY_USE_SID,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=list(USE_ACTIONS),
        resources=["*"],
        conditions={
            # Principals of other accounts have no allow in this policy at all; AWS-owned grantees
            # of grants for AWS resources (other accounts) are the services acting for the project.
            "StringEquals": {"aws:PrincipalAccount": account},
            "ArnNotLike": {"aws:PrincipalArn": [u.arn for u in users]},
            "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
        },
    )


class PurposeKey(Construct):
    """A customer-managed key for one purpose. Exposes ``key``; ``restrict_use()`` names its users (K1)."""

    def __init__(self, scope: Construct, construct_id: str, *, props: KeyProps) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=f"{props.qualifier} {props.purpose}: {props.description}",
            alias=qualified_key_alias(props.qualifier, props.purpose),
            enable_key_rotation=True,
            pending_window=Duration.days(props.pending_window_days),
        )
        self.key.add_to_resource_policy(deny_grants_not_for_aws_resources())
        if props.for_cloudwatch_logs:
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowCloudWatchLogsOfThisAccount",
                    principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                    actions=[
                        "kms:Encrypt*",
                        "kms:Decrypt*",
                        "kms:ReEncrypt*",
                        "kms:GenerateDataKey*",
                        "kms:Describe*",
                    ],
                    resources=["*"],  # in a key policy, "*" means this key
                    conditions={
                        "ArnLike": {
                            "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                                service="logs",
                                resource="log-group",
                                resource_name="*",
                                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                            )
                        }
                    },
                )
            )

    def restrict_use(self, users: Sequence[KeyUser]) -> None:
        """K1: only ``users`` (and AWS service principals) of this account may use the key."""
        self.key.add_to_resource_policy(deny_use_outside(users, Stack.of(self).account))
        cfn = self.key.node.default_child
        assert isinstance(cfn, kms.CfnKey)
        cfn.add_metadata(KEY_USERS_METADATA, [{"principal": u.arn, "reason": u.reason} for u in users])

"""Control D3: one customer-managed KMS key per purpose, with rotation and a narrow key policy.

Secure defaults (``KeyProps``): rotation always on; the key policy keeps CDK's default statement
(the account root, so IAM policies written by ``grant*()`` take effect; no ``*`` principal) and
trusts no service; deletion waits the longest window KMS allows (30 days). Keys that encrypt
CloudWatch Logs (``for_cloudwatch_logs``) also trust the regional Logs service, but only for log
groups of this account and region (encryption context).
"""

from __future__ import annotations

import re
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


class PurposeKey(Construct):
    """A customer-managed key for one purpose. Exposes ``key``."""

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

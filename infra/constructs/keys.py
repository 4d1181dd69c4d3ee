"""Control D3: one customer-managed KMS key per purpose, with rotation and a narrow key policy.

The key policy keeps CDK's default statement (the account root, so IAM policies written by
``grant*()`` take effect; no ``*`` principal). Keys that encrypt CloudWatch Logs also trust the
regional Logs service, but only for log groups of this account and region (encryption context).
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from stage import Stage
from stage.names import key_alias


class PurposeKey(Construct):
    """A customer-managed key for one purpose (``data``, ``artifacts``, ``logs``, ``flow-logs``, ...)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: Stage,
        purpose: str,
        description: str,
        for_cloudwatch_logs: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=f"{stage.qualifier} {purpose}: {description}",
            alias=key_alias(stage, purpose),
            enable_key_rotation=True,
            # Deletion (only when the stage allows it) waits the shortest window in dev.
            pending_window=Duration.days(30 if stage.production else 7),
        )
        if for_cloudwatch_logs:
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

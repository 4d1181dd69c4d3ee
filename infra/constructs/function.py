"""Control L1: the one way rookery deploys a Lambda function.

Secure defaults, each proven by a test: the current Python runtime, in the VPC's isolated
subnets behind a workload security group, reserved concurrency, a KMS-encrypted dead-letter
queue, active X-Ray tracing, JSON logs into a KMS-encrypted log group with retention, and a
role that starts empty (no AWS managed policies) and receives only what ``grant*()`` and the
few statements below give it. Code is packaged without Docker by ``infra.lambda_package``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, Duration, ILocalBundling, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.audit.acknowledge import (
    acknowledge,
    acknowledge_cross_stack,
    acknowledge_guard,
    acknowledge_inline_policy,
)
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS, encrypted_log_group
from infra.constructs.props import PropsError, check_qualifier, check_retention
from infra.lambda_package import LAMBDAS_DIR, package_function
from rookery_contracts.env import POWERTOOLS_LOG_LEVEL_ENV, POWERTOOLS_NAMESPACE_ENV, POWERTOOLS_SERVICE_ENV

# The newest Python runtime CDK knows; cdk-nag's L1 (LambdaLatestVersion) holds us to it.
RUNTIME: Final = lambda_.Runtime.PYTHON_3_14
_FUNCTION_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@jsii.implements(ILocalBundling)
class _LocalPackager:
    """CDK's local-bundling hook: package ``lambdas/<name>`` in-process, so Docker is never needed."""

    def __init__(self, name: str, lambdas_dir: Path) -> None:
        self._name = name
        self._lambdas_dir = lambdas_dir

    def try_bundle(self, output_dir: str, *_options: Any, **_named: Any) -> bool:
        # jsii passes the BundlingOptions positionally; packaging needs none of them.
        package_function(self._name, Path(output_dir), lambdas_dir=self._lambdas_dir)
        return True


@dataclass(frozen=True, kw_only=True)
class FunctionProps:
    """What differs between rookery's functions; everything else is a fixed secure default."""

    qualifier: str  # names the role's description and the Powertools metrics namespace
    name: str  # folder under lambdas/ and the Python package name
    handler: str  # e.g. "firehose_transform.handler.lambda_handler"
    description: str
    reserved_concurrency: int
    """Required, at least 1: a function never draws on the account's unreserved concurrency."""
    timeout: Duration = field(default_factory=lambda: Duration.seconds(60))
    memory_mib: int = 256
    environment: Mapping[str, str] = field(default_factory=dict)
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    """Secure default: a year of the function's (KMS-encrypted) logs."""
    lambdas_dir: Path = LAMBDAS_DIR
    function_name: str | None = None  # a fixed name for functions people look up; None: generated

    def __post_init__(self) -> None:
        check_qualifier(self)
        if self.function_name is not None and not _FUNCTION_NAME.match(self.function_name):
            raise PropsError(
                self, "function_name", "a Lambda function name: letters, digits, '-' and '_', at most 64"
            )
        if not (self.lambdas_dir / self.name / "__init__.py").is_file():
            raise PropsError(
                self,
                "name",
                f"{self.lambdas_dir / self.name} is not a Python package; "
                f"create lambdas/{self.name}/__init__.py or fix the name",
            )
        if not self.handler.startswith(f"{self.name}."):
            raise PropsError(
                self,
                "handler",
                f"must live in package {self.name!r}, e.g. '{self.name}.handler.lambda_handler'",
            )
        if self.reserved_concurrency < 1:
            raise PropsError(self, "reserved_concurrency", "reserved_concurrency must be at least 1")
        clash = sorted(k for k in self.environment if k.startswith("POWERTOOLS_"))
        if clash:
            raise PropsError(self, "environment", f"{clash} are set by the construct; remove them")
        check_retention(self)


class ProjectFunction(Construct):
    """A rookery Lambda function (L1).

    Exposes ``function``, ``role``, ``log_group`` and ``dead_letter_queue``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: FunctionProps,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        security_group: ec2.ISecurityGroup,
        logs_key: kms.IKey,
        queue_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = encrypted_log_group(self, "LogGroup", key=logs_key, days=props.log_retention_days)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=queue_key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{props.qualifier} {props.name}: execution role",
        )
        self.log_group.grant_write(self.role)
        # Lambda creates and deletes the function's network interfaces with this role; EC2's
        # describe calls have no resource-level permissions.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ManageFunctionNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
            )
        )
        # Lambda sends failed asynchronous events to the encrypted queue with this role.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptDeadLetters",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[queue_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{Stack.of(self).region}.amazonaws.com"}},
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=props.handler,
            code=lambda_.Code.from_asset(
                str(props.lambdas_dir / props.name),
                asset_hash_type=AssetHashType.OUTPUT,
                bundling=BundlingOptions(
                    # Required by the API but never pulled: local bundling always succeeds.
                    image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.14"),
                    local=_LocalPackager(props.name, props.lambdas_dir),
                ),
            ),
            function_name=props.function_name,
            description=props.description,
            timeout=props.timeout,
            memory_size=props.memory_mib,
            role=self.role,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[security_group],
            reserved_concurrent_executions=props.reserved_concurrency,
            dead_letter_queue=self.dead_letter_queue,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            environment={
                POWERTOOLS_SERVICE_ENV: props.name,
                POWERTOOLS_NAMESPACE_ENV: props.qualifier,
                POWERTOOLS_LOG_LEVEL_ENV: "INFO",
                **props.environment,
            },
        )
        # The function's subnets and security group come from one stack (the Network stack's).
        acknowledge_cross_stack(self.function, "lambda_inside_vpc_check", security_group)
        acknowledge_guard(
            self.dead_letter_queue,
            "sqs_dlq_check",
            f"this queue is the {props.name} function's dead-letter queue, where failed events end; a "
            "dead-letter queue of its own would only move them once more",
        )
        acknowledge_inline_policy(
            self.role,
            f"the {props.name} execution role's policy is generated by grant*() for this role alone and "
            "names its own log group and queue; a managed policy would add an attachable copy, no narrowing",
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            f"the {props.name} function's ENI management (ec2:Create/Describe/DeleteNetworkInterface) and "
            "X-Ray segment upload (xray:PutTraceSegments) support no resource-level permissions",
        )

"""Control D6: the Firehose delivery stream that lands producer records in the raw bucket.

Direct PUT (producers call PutRecord, from the VPC through the ``kinesis-firehose`` endpoint),
server-side encryption with the data key, the transform Lambda validating every record, and
delivery into ``<dataset>/ingest_date=YYYY-MM-DD/`` of the raw bucket, SSE-KMS, with failed
records under the error prefix (nothing is dropped silently), CloudWatch error logging and
explicit buffering. None of these is optional; ``IngestionProps`` carries the dataset, its layout,
the stream's name, buffering and log retention.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.audit.acknowledge import acknowledge, acknowledge_inline_policy
from infra.constructs.data_lake import DataKeys
from infra.constructs.function import FunctionProps, ProjectFunction
from infra.constructs.log_groups import DEFAULT_RETENTION_DAYS, encrypted_log_group
from infra.constructs.props import PropsError, check_qualifier, check_retention
from rookery_contracts.env import DATASET_SCHEMA_ENV
from rookery_contracts.ingest import (
    DELIVERY_COMPRESSION,
    TRANSFORM_BUFFER_MIB,
    TRANSFORM_INTERVAL_SECONDS,
    TRANSFORM_RETRIES,
)
from stage.model import DataLayout, DatasetSchema

TRANSFORM: Final = "firehose_transform"
# Firehose invokes the transform synchronously, a few batches at a time; a small reservation
# bounds cost and leaves account concurrency to everything else.
TRANSFORM_CONCURRENCY: Final = 5
_STREAM_NAME: Final = re.compile(r"^[a-zA-Z0-9_.-]{1,64}$")


@dataclass(frozen=True, kw_only=True)
class IngestionProps:
    qualifier: str
    dataset: DatasetSchema  # the transform validates every record against it
    layout: DataLayout = field(default_factory=DataLayout)
    delivery_stream_name: str
    buffer_seconds: int  # Firehose's buffering hints (the stage's data.firehose_buffer_*)
    buffer_mib: int
    log_retention_days: int = DEFAULT_RETENTION_DAYS
    """Secure default: a year of delivery errors and transform logs (KMS-encrypted)."""

    def __post_init__(self) -> None:
        check_qualifier(self)
        if not _STREAM_NAME.match(self.delivery_stream_name):
            raise PropsError(
                self,
                "delivery_stream_name",
                "1-64 letters, digits, '_', '.' or '-' (Firehose); e.g. 'rookery-dev-penguins-ingest'",
            )
        data_prefix, error_prefix = self.layout.data_prefix(self.dataset), self.layout.error_prefix
        if data_prefix.startswith(error_prefix) or error_prefix.startswith(data_prefix):
            raise PropsError(
                self,
                "layout",
                f"failed records under {error_prefix!r} would land among the data under {data_prefix!r} "
                "(and be read as data); give layout.error_prefix a prefix of its own, e.g. 'errors/'",
            )
        check_retention(self)


class IngestionStream(Construct):
    """Firehose + transform Lambda. Exposes ``delivery_stream``, ``role``, ``transform`` and ``log_group``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: IngestionProps,
        keys: DataKeys,
        raw_bucket: s3.IBucket,
        vpc: ec2.IVpc,
        subnets: ec2.SubnetSelection,
        function_security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        layout, dataset = props.layout, props.dataset
        self.transform = ProjectFunction(
            self,
            "Transform",
            props=FunctionProps(
                qualifier=props.qualifier,
                name=TRANSFORM,
                handler=f"{TRANSFORM}.handler.lambda_handler",
                description=f"{props.qualifier}: validate and stamp every {dataset.name} record",
                reserved_concurrency=TRANSFORM_CONCURRENCY,
                environment={DATASET_SCHEMA_ENV: dataset.to_json()},
                log_retention_days=props.log_retention_days,
            ),
            vpc=vpc,
            subnets=subnets,
            security_group=function_security_group,
            logs_key=keys.logs,
            queue_key=keys.data,
        )
        self.log_group = encrypted_log_group(self, "LogGroup", key=keys.logs, days=props.log_retention_days)
        self.log_stream = logs.LogStream(self, "DeliveryLogStream", log_group=self.log_group)
        self.role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"{props.qualifier}: Firehose delivery into the raw bucket",
        )
        data_objects = raw_bucket.arn_for_objects(f"{layout.data_prefix(dataset)}*")
        error_objects = raw_bucket.arn_for_objects(f"{layout.error_prefix}*")
        for statement in _delivery_statements(
            stack,
            bucket=raw_bucket,
            objects=[data_objects, error_objects],
            key_arn=keys.data.key_arn,
            function_arn=self.transform.function.function_arn,
            log_stream_arn=stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=f"{self.log_group.log_group_name}:log-stream:{self.log_stream.log_stream_name}",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            ),
        ):
            self.role.add_to_policy(statement)

        lambda_parameters = {
            "LambdaArn": self.transform.function.function_arn,
            "NumberOfRetries": str(TRANSFORM_RETRIES),
            "BufferSizeInMBs": str(TRANSFORM_BUFFER_MIB),
            "BufferIntervalInSeconds": str(TRANSFORM_INTERVAL_SECONDS),
        }
        F = firehose.CfnDeliveryStream  # noqa: N806  (short alias for the nested property classes)
        self.delivery_stream = F(
            self,
            "DeliveryStream",
            delivery_stream_name=props.delivery_stream_name,
            delivery_stream_type="DirectPut",
            delivery_stream_encryption_configuration_input=F.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="CUSTOMER_MANAGED_CMK", key_arn=keys.data.key_arn
            ),
            extended_s3_destination_configuration=F.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=raw_bucket.bucket_arn,
                role_arn=self.role.role_arn,
                prefix=layout.firehose_prefix(dataset),
                error_output_prefix=layout.firehose_error_prefix(),
                buffering_hints=F.BufferingHintsProperty(
                    interval_in_seconds=props.buffer_seconds,
                    size_in_m_bs=props.buffer_mib,
                ),
                # Plain JSON lines: Athena, the crawler and the pipeline read them as they are.
                compression_format=DELIVERY_COMPRESSION,
                encryption_configuration=F.EncryptionConfigurationProperty(
                    kms_encryption_config=F.KMSEncryptionConfigProperty(awskms_key_arn=keys.data.key_arn)
                ),
                cloud_watch_logging_options=F.CloudWatchLoggingOptionsProperty(
                    enabled=True,
                    log_group_name=self.log_group.log_group_name,
                    log_stream_name=self.log_stream.log_stream_name,
                ),
                processing_configuration=F.ProcessingConfigurationProperty(
                    enabled=True,
                    processors=[
                        F.ProcessorProperty(
                            type="Lambda",
                            parameters=[
                                F.ProcessorParameterProperty(parameter_name=k, parameter_value=v)
                                for k, v in lambda_parameters.items()
                            ],
                        )
                    ],
                ),
                s3_backup_mode="Disabled",
            ),
        )
        # Firehose checks at creation that its role may write; create the policy first.
        self.delivery_stream.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        acknowledge_inline_policy(
            self.role,
            "the Firehose delivery role's policy is written for this role alone: write two prefixes of the "
            "raw bucket, use the data key via S3, invoke the transform, write its own log stream",
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{_logical(raw_bucket)}.Arn>/"
            f"{layout.data_prefix(dataset)}*]",
            "Firehose names each object it delivers under the dataset prefix (date partition, random suffix)",
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            f"AwsSolutions::AwsSolutions-IAM5[Resource::<{_logical(raw_bucket)}.Arn>/{layout.error_prefix}*]",
            "Firehose names each failed-record object it writes under the error prefix",
        )


def _logical(bucket: s3.IBucket) -> str:
    """The logical id cdk-nag prints for a bucket in finding ids."""
    cfn = bucket.node.default_child
    assert isinstance(cfn, s3.CfnBucket)
    return Stack.of(bucket).get_logical_id(cfn)


def _delivery_statements(
    stack: Stack,
    *,
    bucket: s3.IBucket,
    objects: list[str],
    key_arn: str,
    function_arn: str,
    log_stream_arn: str,
) -> list[iam.PolicyStatement]:
    """The Firehose role's permissions, as AWS documents them for an S3 destination, narrowed to prefixes."""
    return [
        iam.PolicyStatement(
            sid="ListRawBucket",
            actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
            resources=[bucket.bucket_arn],
        ),
        iam.PolicyStatement(
            sid="WriteDeliveredObjects",
            actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
            resources=objects,
        ),
        iam.PolicyStatement(
            sid="EncryptDeliveredObjects",
            actions=["kms:GenerateDataKey", "kms:Decrypt"],
            resources=[key_arn],
            conditions={
                "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"},
                "StringLike": {
                    "kms:EncryptionContext:aws:s3:arn": [bucket.bucket_arn, f"{bucket.bucket_arn}/*"]
                },
            },
        ),
        iam.PolicyStatement(
            sid="InvokeTransform",
            actions=["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
            resources=[function_arn],
        ),
        iam.PolicyStatement(
            sid="LogDeliveryErrors", actions=["logs:PutLogEvents"], resources=[log_stream_arn]
        ),
    ]

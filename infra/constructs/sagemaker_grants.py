"""The statements every SageMaker execution role of the stage shares (the pipeline's jobs, the hosted
model, the monitoring jobs): pulling the project image, container logs, SageMaker's metrics and network
interfaces in the stage's VPC. Each role names its own statements and says why it needs them."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_ecr as ecr

from infra.constructs.policies import Grant


def image_pull_grants(repository: ecr.IRepository, *, runs: str) -> list[Grant]:
    """Pull the project image from its repository; ``runs`` says who runs it, in the reason."""
    return [
        Grant(
            "PullProjectImage",
            ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"),
            (repository.repository_arn,),
            f"{runs} the project image, pushed to the CDK asset repository",
        ),
        Grant(
            "RegistryLogin",
            ("ecr:GetAuthorizationToken",),
            ("*",),
            "ecr:GetAuthorizationToken (the registry login before a pull) has no resource-level permissions",
        ),
    ]


def container_log_grants(sid: str, log_group: str, *, group_reason: str, streams_reason: str) -> list[Grant]:
    """``<sid>LogGroup`` and ``<sid>LogStreams`` on the log group ARN SageMaker writes to."""
    return [
        Grant(
            f"{sid}LogGroup", ("logs:CreateLogGroup", "logs:DescribeLogStreams"), (log_group,), group_reason
        ),
        Grant(
            f"{sid}LogStreams",
            ("logs:CreateLogStream", "logs:PutLogEvents"),
            (f"{log_group}:log-stream:*",),
            streams_reason,
        ),
    ]


def sagemaker_metrics_grant(sid: str) -> Grant:
    """``cloudwatch:PutMetricData`` into SageMaker's namespaces only."""
    return Grant(
        sid,
        ("cloudwatch:PutMetricData",),
        ("*",),
        "PutMetricData has no resource-level permissions; the condition keeps it to SageMaker metrics",
        {"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
    )


def vpc_network_grants(stack: Stack, vpc_id: str, *, sid: str, attach_reason: str) -> list[Grant]:
    """``<sid>NetworkInterfacesInStageVpc`` (conditioned on the stage's VPC) and ``Describe<sid>Network``."""
    return [
        Grant(
            f"{sid}NetworkInterfacesInStageVpc",
            (
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ),
            ("*",),
            attach_reason,
            {"ArnEquals": {"ec2:Vpc": stack.format_arn(service="ec2", resource="vpc", resource_name=vpc_id)}},
        ),
        Grant(
            f"Describe{sid}Network",
            (
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ),
            ("*",),
            "EC2 describe calls have no resource-level permissions",
        ),
    ]

"""What each VPC endpoint lets through, with the reason for every scope (controls V2, D2 and E1).

Pure data and functions (no CDK): the Network construct turns it into endpoint policies and the
audit report prints the same reasons. Resource templates use ``{partition}``, ``{region}`` and
``{account}``; the construct fills them with CloudFormation pseudo parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from stage import INTERFACE_ENDPOINTS


@dataclass(frozen=True)
class EndpointAccess:
    """One allow statement of an endpoint policy: these actions on these resources, and why."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    reason: str
    # Interface endpoints always pin the calling principal to the project account; only the S3
    # gateway's AWS-owned buckets are read with credentials the workload does not own.
    principal_in_account: bool = True


def _own(service: str, resource: str = "*") -> str:
    return f"arn:{{partition}}:{service}:{{region}}:{{account}}:{resource}"


# E1: the ECR endpoints admit the project account's repositories; an external image the stage
# explicitly allows (the built-in XGBoost image) adds its registry's account (``external_registry``).
ECR_ENDPOINTS: Final = ("ecr.api", "ecr.dkr")
_PROJECT_REGISTRY = (
    "read-only image pulls from the project account's repositories only (the project image); the "
    "pipeline perimeter (T6) admits no other registry"
)
_ECR_PULL: Final = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
_NO_RESOURCE_LEVEL = "the action supports no resource-level permissions, so the resource must be '*'"

# Interface endpoints by config name (stage.INTERFACE_ENDPOINTS).
INTERFACE_ENDPOINT_ACCESS: Final[Mapping[str, tuple[EndpointAccess, ...]]] = {
    "sagemaker.api": (
        EndpointAccess(("sagemaker:*",), (_own("sagemaker"),), "the project's own SageMaker resources"),
        EndpointAccess(
            ("sagemaker:List*", "sagemaker:Search", "sagemaker:GetSearchSuggestions"),
            ("*",),
            f"list and search calls of the SageMaker SDK and console; {_NO_RESOURCE_LEVEL}",
        ),
    ),
    "sagemaker.runtime": (
        EndpointAccess(
            (
                "sagemaker:InvokeEndpoint",
                "sagemaker:InvokeEndpointAsync",
                "sagemaker:InvokeEndpointWithResponseStream",
            ),
            (_own("sagemaker", "endpoint/*"),),
            "inference on the project's own endpoints only",
        ),
    ),
    "notebook": (
        EndpointAccess(
            ("sagemaker:*",),
            (_own("sagemaker", "notebook-instance/*"),),
            "Jupyter sessions on the project's own notebook instances only",
        ),
    ),
    "sts": (
        EndpointAccess(
            ("sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"),
            ("arn:{partition}:iam::{account}:role/*",),
            "assume roles of the project account only",
        ),
        EndpointAccess(("sts:GetCallerIdentity",), ("*",), f"SDK identity checks; {_NO_RESOURCE_LEVEL}"),
    ),
    "logs": (EndpointAccess(("logs:*",), (_own("logs"),), "log groups of the project account and region"),),
    "monitoring": (
        EndpointAccess(
            ("cloudwatch:PutMetricData", "cloudwatch:GetMetricData", "cloudwatch:ListMetrics"),
            ("*",),
            f"job, endpoint and Lambda metrics; {_NO_RESOURCE_LEVEL}",
        ),
    ),
    "kms": (
        EndpointAccess(
            (
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:GenerateDataKey*",
                "kms:ReEncrypt*",
                "kms:DescribeKey",
                "kms:CreateGrant",
            ),
            (_own("kms", "key/*"),),
            "use (never administer) keys of the project account",
        ),
    ),
    "ecr.api": (
        EndpointAccess(("ecr:GetAuthorizationToken",), ("*",), f"registry login; {_NO_RESOURCE_LEVEL}"),
        EndpointAccess(
            (*_ECR_PULL, "ecr:DescribeImages", "ecr:DescribeRepositories"),
            (_own("ecr", "repository/*"),),
            _PROJECT_REGISTRY,
        ),
    ),
    "ecr.dkr": (
        EndpointAccess(("ecr:GetAuthorizationToken",), ("*",), f"docker login; {_NO_RESOURCE_LEVEL}"),
        EndpointAccess(_ECR_PULL, (_own("ecr", "repository/*"),), _PROJECT_REGISTRY),
    ),
    "glue": (EndpointAccess(("glue:*",), (_own("glue"),), "the project account's Data Catalog"),),
    "kinesis-firehose": (
        EndpointAccess(
            ("firehose:PutRecord", "firehose:PutRecordBatch", "firehose:DescribeDeliveryStream"),
            (_own("firehose", "deliverystream/*"),),
            "producers write to the project account's delivery streams only",
        ),
    ),
    "athena": (EndpointAccess(("athena:*",), (_own("athena"),), "the project account's workgroups"),),
    "sqs": (EndpointAccess(("sqs:*",), (_own("sqs"),), "the project account's queues"),),
    "events": (
        EndpointAccess(
            ("events:PutEvents",), (_own("events", "event-bus/*"),), "the project account's buses"
        ),
    ),
    "ssm": (
        EndpointAccess(
            ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"),
            (_own("ssm", "parameter/*"),),
            "read parameters of the project account",
        ),
    ),
    "execute-api": (
        EndpointAccess(
            ("execute-api:Invoke",),
            (_own("execute-api", "*"),),
            "call the project account's private APIs only (the inference API); each API's resource "
            "policy admits only this endpoint",
        ),
    ),
    "cloudformation": (
        EndpointAccess(
            (
                "cloudformation:DescribeStacks",
                "cloudformation:DescribeStackEvents",
                "cloudformation:UpdateStack",
            ),
            (_own("cloudformation", "stack/*"),),
            "the deployer reads and updates stacks of the project account and region only",
        ),
    ),
}


def external_registry(account: str) -> EndpointAccess:
    """E1: image pulls from one other account's repositories, for an external image the stage allows."""
    if not (len(account) == 12 and account.isdigit()):
        raise ValueError(f"{account!r} is not an AWS account id (12 digits)")
    return EndpointAccess(
        _ECR_PULL,
        (f"arn:{{partition}}:ecr:{{region}}:{account}:repository/*",),
        f"read-only pulls from account {account}: the stage explicitly allows an image from its registry "
        "(ml.training.image, a T6 exception with its reason in the pipeline definition)",
    )


# Read and write actions a workload needs on the project buckets through the S3 gateway endpoint.
PROJECT_BUCKET_ACTIONS: Final = (
    "s3:GetObject*",
    "s3:PutObject*",
    "s3:DeleteObject*",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "s3:ListBucket*",
    "s3:GetBucketLocation",
)


@dataclass(frozen=True)
class AwsOwnedBucket:
    """A bucket AWS owns that a workload in the no-NAT VPC must read through the S3 gateway."""

    name: str  # may contain {region}
    actions: tuple[str, ...]
    reason: str


# D2: the only AWS-owned buckets the workloads truly need. SageMaker jobs, endpoints and the
# notebook need nothing else from AWS-owned S3 when images come from ECR and data from the lake.
AWS_OWNED_BUCKETS: Final = (
    AwsOwnedBucket(
        name="prod-{region}-starport-layer-bucket",
        actions=("s3:GetObject",),
        reason=(
            "ECR stores image layers here; pulling the project image (and SageMaker's built-in "
            "images) from inside the VPC downloads them through the gateway endpoint with "
            "ECR-signed URLs, so no account condition can apply"
        ),
    ),
)


def check_known(names: tuple[str, ...]) -> None:
    """Every configurable endpoint has a policy here, and nothing here is unknown to the config."""
    missing = sorted(set(INTERFACE_ENDPOINTS) - set(INTERFACE_ENDPOINT_ACCESS))
    extra = sorted(set(INTERFACE_ENDPOINT_ACCESS) - set(INTERFACE_ENDPOINTS))
    if missing or extra:
        raise RuntimeError(f"endpoint policies out of sync with stage: missing {missing}, extra {extra}")
    unknown = [n for n in names if n not in INTERFACE_ENDPOINT_ACCESS]
    if unknown:
        raise ValueError(f"no endpoint policy for {unknown}")

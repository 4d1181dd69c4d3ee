"""Controls I1 and H2: the execution role of the endpoint's model, least privilege inside the boundary.

SageMaker assumes this role to start the model's containers and to write what the endpoint
produces. Every statement carries its reason (``serving_grants``):

- pull the project image from its repository only (the CDK asset repository);
- read the registered model artifacts under the pipeline's prefix of the artifacts bucket, and
  decrypt them with the artifacts key, through S3 only;
- write data capture under the capture prefix of the raw bucket, encrypted with the data key
  through S3 only (no read, no list, no other prefix);
- write the endpoint's own log group and SageMaker metrics;
- manage the network interfaces of the model's VPC configuration, in the stage's VPC only.

Secure defaults: the role has no managed policy, lives under its own IAM path (the Data stack
trusts that path for data capture, limited to the capture prefix) and always carries a
permissions boundary (the stage's SageMaker guardrails), which caps it at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import ArnFormat, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.audit.acknowledge import acknowledge_inline_policy
from infra.constructs.data_lake import TrustedPrincipal
from infra.constructs.policies import Grant, attach
from infra.constructs.props import (
    PropsError,
    check_prefix,
    check_qualifier,
    check_role_path,
    role_path_problem,
)
from infra.constructs.sagemaker_grants import (
    container_log_grants,
    image_pull_grants,
    sagemaker_metrics_grant,
    vpc_network_grants,
)

# SageMaker hosting writes each endpoint's container logs to this group (one stream per instance).
ENDPOINT_LOG_GROUP_PREFIX: Final = "/aws/sagemaker/Endpoints/"


@dataclass(frozen=True, kw_only=True)
class ServingRoleProps:
    """What the endpoint's model touches; everything else is a fixed secure default."""

    qualifier: str
    role_path: str
    """No default: the Data stack trusts every role under this path for data capture (D1b), so it must
    hold this role alone (``stage.names.serving_role_path``)."""
    endpoint_name: str
    model_artifacts_prefix: str  # artifacts-bucket prefix the registered models live under
    capture_prefix: str  # raw-bucket prefix data capture writes under

    def __post_init__(self) -> None:
        check_qualifier(self)
        check_role_path(self)
        if not self.endpoint_name:
            raise PropsError(self, "endpoint_name", "name the endpoint whose log group the role writes")
        check_prefix(self, "model_artifacts_prefix")
        check_prefix(self, "capture_prefix")


def capture_exception(role_path: str, capture_prefix: str) -> TrustedPrincipal:
    """D1b: SageMaker writes data capture from its own network on behalf of the model's role."""
    problem = role_path_problem(role_path)
    if problem:
        raise ValueError(f"role_path = {role_path!r}: {problem}")
    return TrustedPrincipal(
        arn=Fn.sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{role_path}*"),
        reason=(
            "the endpoint's model role (matched by its IAM path): SageMaker writes data-capture files "
            "from the SageMaker service network, on behalf of that role, so the requests never carry "
            "the project's aws:SourceVpce"
        ),
        buckets=("raw",),
        prefix=capture_prefix,
    )


def serving_grants(
    stack: Stack,
    props: ServingRoleProps,
    *,
    artifacts: s3.IBucket,
    artifacts_key: kms.IKey,
    raw: s3.IBucket,
    data_key: kms.IKey,
    repository: ecr.IRepository,
    vpc_id: str,
) -> list[Grant]:
    """Every statement of the role, with its reason."""
    via_s3 = {"StringEquals": {"kms:ViaService": f"s3.{stack.region}.{stack.url_suffix}"}}
    log_group = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{ENDPOINT_LOG_GROUP_PREFIX}{props.endpoint_name}",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    storage = [
        Grant(
            "ReadModelArtifacts",
            ("s3:GetObject",),
            (artifacts.arn_for_objects(f"{props.model_artifacts_prefix}*"),),
            "SageMaker downloads the registered version's model.tar.gz, written by the pipeline under its "
            "prefix of the artifacts bucket",
        ),
        Grant(
            "DecryptModelArtifacts",
            ("kms:Decrypt",),
            (artifacts_key.key_arn,),
            "model artifacts are encrypted with the artifacts key; decrypted only by S3 on a download",
            via_s3,
        ),
        Grant(
            "WriteDataCapture",
            ("s3:PutObject",),
            (raw.arn_for_objects(f"{props.capture_prefix}*"),),
            "data capture writes requests and responses under the capture prefix of the raw bucket; the "
            "role can neither read nor list them",
        ),
        Grant(
            "EncryptDataCapture",
            ("kms:GenerateDataKey",),
            (data_key.key_arn,),
            "captured records are encrypted with the data key by S3 (DataCaptureConfig.KmsKeyId)",
            via_s3,
        ),
    ]
    return [
        *image_pull_grants(repository, runs="the registered model runs"),
        *storage,
        *container_log_grants(
            "Endpoint",
            log_group,
            group_reason="SageMaker writes the endpoint's container logs to "
            f"{ENDPOINT_LOG_GROUP_PREFIX}<endpoint>",
            streams_reason="one log stream per instance and container of the endpoint; the names carry "
            "instance ids that do not exist before the instances",
        ),
        sagemaker_metrics_grant("EndpointMetrics"),
        *vpc_network_grants(
            stack,
            vpc_id,
            sid="Model",
            attach_reason="the model's VPC configuration attaches network interfaces whose ids do not exist "
            "before the instances; the ec2:Vpc condition keeps them in the stage's VPC",
        ),
    ]


class ServingModelRole(Construct):
    """The model's execution role. Exposes ``role`` and ``grants`` (its statements)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ServingRoleProps,
        artifacts_bucket: s3.IBucket,
        artifacts_key: kms.IKey,
        raw_bucket: s3.IBucket,
        data_key: kms.IKey,
        image_repository: ecr.IRepository,
        vpc: ec2.IVpc,
        boundary: iam.IManagedPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            path=props.role_path,
            description=f"{props.qualifier}: execution role of the {props.endpoint_name} model",
            permissions_boundary=boundary,
        )
        self.grants = serving_grants(
            Stack.of(self),
            props,
            artifacts=artifacts_bucket,
            artifacts_key=artifacts_key,
            raw=raw_bucket,
            data_key=data_key,
            repository=image_repository,
            vpc_id=vpc.vpc_id,
        )
        attach(self.role, self.grants)
        acknowledge_inline_policy(
            self.role,
            "the endpoint model role's policy is written for this role alone (its image repository, model "
            "prefix, capture prefix, keys and log group); a managed copy could be attached elsewhere",
        )

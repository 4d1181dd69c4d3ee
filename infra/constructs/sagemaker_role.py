"""Control I1: the SageMaker execution role of the stage's pipeline and of every job it launches.

Least privilege, derived from what the pipeline does (``ExecutionScope``); every statement below
carries its reason (``execution_grants``):

- S3: read the raw bucket under the dataset's prefix; read and write the artifacts bucket under
  ``<pipeline-name>/`` (job outputs, checkpoints, models, evaluations); list only those prefixes.
- KMS through ``grant*()``: decrypt with the data key (raw objects); use the artifacts key for job
  volumes and outputs, with the grant EBS needs (only for AWS resources).
- ECR: pull from the project image's repository (``grant_pull``) and, if the stage trains on
  SageMaker's built-in image, from that one repository.
- SageMaker: create, describe and stop the kinds of job the pipeline has, on the names Pipelines
  gives them; register versions in the stage's model package group only, and (R1) only with the
  statuses ``ExecutionScope.registration_statuses`` allows (``sagemaker:ModelApprovalStatus``):
  ``PendingManualApproval`` where the stage requires approval. The role can never change a
  version's status (no ``UpdateModelPackage``): approving is a person's act, not the pipeline's.
- CloudWatch Logs: the ``/aws/sagemaker/*Jobs`` groups SageMaker writes to, streams of those jobs.
- ``iam:PassRole`` on itself, to SageMaker only (``iam:PassedToService``).
- EC2: the network interfaces of VPC jobs, in the stage's VPC only.

The role lives under ``ExecutionRoleProps.role_path`` (``stage.names.sagemaker_role_path``): the
Data stack's D1b exception for the artifacts bucket names that path (``execution_role_exception``),
so the pipeline service can read property files and model artifacts from outside the VPC without
the Data stack depending on this one. The guardrails boundary caps the role at run time; it is a
required argument, not an option.
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
from infra.constructs.props import check_qualifier, check_role_path, role_path_problem
from infra.constructs.sagemaker_grants import sagemaker_metrics_grant, vpc_network_grants
from stage import APPROVAL_STATUSES, PENDING_MANUAL_APPROVAL
from stage.names import PRIVATE_ECR_IMAGE

# Pipelines names every processing, training and transform job it launches
# ``pipelines-<execution-id>-<step>-<suffix>`` (the SDK's base job names are dropped).
PIPELINE_JOB_PREFIX: Final = "pipelines-"
JOB_KINDS: Final = {"processing-job": "Processing", "training-job": "Training", "transform-job": "Transform"}
_KEY_WILDCARDS: Final = ("kms:GenerateDataKey*", "kms:ReEncrypt*")


@dataclass(frozen=True)
class ExecutionScope:
    """What the pipeline touches, from the stage and its rendered definition."""

    pipeline_name: str
    data_prefix: str  # raw-bucket prefix of the dataset, e.g. "penguins/"
    model_package_group: str
    tune: bool  # the pipeline has a tuning step (else a training step)
    external_images: tuple[str, ...] = ()  # image URIs the definition names besides the project image
    registration_statuses: tuple[str, ...] = (PENDING_MANUAL_APPROVAL,)
    """Secure default: Register may create pending versions only (R1); a stage without manual approval
    lists the statuses it registers with."""

    def __post_init__(self) -> None:
        unknown = [s for s in self.registration_statuses if s not in APPROVAL_STATUSES]
        if unknown or not self.registration_statuses:
            raise ValueError(
                f"registration_statuses {list(self.registration_statuses)}: give one or more of "
                f"{list(APPROVAL_STATUSES)} (normally just {PENDING_MANUAL_APPROVAL})"
            )
        for image in self.external_images:
            if PRIVATE_ECR_IMAGE.match(image) is None:
                raise ValueError(
                    f"image {image!r} is not in an ECR repository; the execution role can pull only "
                    "from ECR (control T6)"
                )


@dataclass(frozen=True, kw_only=True)
class ExecutionRoleProps:
    qualifier: str
    role_path: str
    """No default: the Data stack trusts every role under this path (D1b), so it must hold this role alone."""
    execution: ExecutionScope

    def __post_init__(self) -> None:
        check_qualifier(self)
        check_role_path(self)


def execution_role_exception(role_path: str) -> TrustedPrincipal:
    """D1b: the pipeline service reads property files and model artifacts from outside the VPC."""
    problem = role_path_problem(role_path)
    if problem:
        raise ValueError(f"role_path = {role_path!r}: {problem}")
    return TrustedPrincipal(
        arn=Fn.sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role{role_path}*"),
        reason=(
            "the SageMaker execution role (matched by its IAM path): SageMaker Pipelines reads "
            "evaluation.json (JsonGet) and registers model artifacts from the SageMaker service network"
        ),
        buckets=("artifacts",),
    )


def execution_grants(
    stack: Stack,
    execution: ExecutionScope,
    *,
    role_arn: str,
    raw: s3.IBucket,
    artifacts: s3.IBucket,
    vpc_id: str,
) -> list[Grant]:
    """Every hand-written statement of the execution role, with its reason."""

    def sagemaker(resource: str, name: str) -> str:
        return stack.format_arn(service="sagemaker", resource=resource, resource_name=name)

    def log_group(kind: str) -> str:
        return stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"/aws/sagemaker/{kind}Jobs",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    pipeline_prefix = f"{execution.pipeline_name}/"
    group = execution.model_package_group
    grants = [
        Grant(
            "ReadRawDatasetPrefix",
            ("s3:GetObject", "s3:GetObjectVersion"),
            (raw.arn_for_objects(f"{execution.data_prefix}*"),),
            "Preprocess reads the new data under the dataset's prefix of the raw bucket, nothing else",
        ),
        Grant(
            "ReadWritePipelineArtifacts",
            ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"),
            (artifacts.arn_for_objects(f"{pipeline_prefix}*"),),
            "jobs write outputs, checkpoints, models and evaluations under the pipeline's own prefix of "
            "the artifacts bucket, with per-execution keys that cannot be named in advance",
        ),
        Grant(
            "ListOwnPrefixes",
            ("s3:ListBucket",),
            (raw.bucket_arn, artifacts.bucket_arn),
            "S3Prefix channels and checkpoint resume list objects under the two prefixes above only",
            {"StringLike": {"s3:prefix": [f"{execution.data_prefix}*", f"{pipeline_prefix}*"]}},
        ),
        Grant(
            "LocateBuckets",
            ("s3:GetBucketLocation",),
            (raw.bucket_arn, artifacts.bucket_arn),
            "SageMaker checks the region of every input and output bucket",
        ),
        Grant(
            "RunPipelineJobs",
            (
                *(
                    f"sagemaker:{verb}{kind}Job"
                    for kind in JOB_KINDS.values()
                    for verb in ("Create", "Describe", "Stop")
                ),
                "sagemaker:AddTags",
            ),
            tuple(sagemaker(resource, f"{PIPELINE_JOB_PREFIX}*") for resource in JOB_KINDS),
            "Pipelines names the jobs it launches pipelines-<execution>-<step>-<suffix>; the names cannot "
            "carry the stage, so the scope is jobs launched by Pipelines in this account and region",
        ),
        Grant(
            "CreatePipelineModels",
            ("sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags"),
            (sagemaker("model", "*"),),
            "the CreateModel step's model is named by Pipelines at run time; the guardrails boundary "
            "still requires the stage's VPC and network isolation for any model",
        ),
        Grant(
            "RegisterInStageGroup",
            ("sagemaker:CreateModelPackage",),
            (sagemaker("model-package", f"{group}/*"),),
            f"Register adds numbered versions to the stage's group {group} only, with the statuses the "
            "stage allows (R1: only PendingManualApproval where a person approves every version)",
            {"StringEquals": {"sagemaker:ModelApprovalStatus": list(execution.registration_statuses)}},
        ),
        Grant(
            "ReadStageGroupVersions",
            ("sagemaker:DescribeModelPackage", "sagemaker:AddTags"),
            (sagemaker("model-package", f"{group}/*"),),
            f"Register describes and tags the versions it adds to {group}; it never changes their status",
        ),
        Grant(
            "ReadStageGroup",
            ("sagemaker:DescribeModelPackageGroup",),
            (sagemaker("model-package-group", group),),
            "Register checks the stage's model package group",
        ),
        Grant(
            "PassSelfToSageMaker",
            ("iam:PassRole",),
            (role_arn,),
            "every job of the pipeline runs as this role; it may be passed to SageMaker only",
            {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
        *vpc_network_grants(
            stack,
            vpc_id,
            sid="Job",
            attach_reason="VPC jobs attach network interfaces whose ids do not exist before the job; the "
            "ec2:Vpc condition keeps them in the stage's VPC",
        ),
        sagemaker_metrics_grant("JobMetrics"),
    ]
    if execution.tune:
        grants.append(
            Grant(
                "RunTuningJobs",
                (
                    "sagemaker:CreateHyperParameterTuningJob",
                    "sagemaker:DescribeHyperParameterTuningJob",
                    "sagemaker:StopHyperParameterTuningJob",
                    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                    "sagemaker:AddTags",
                ),
                (sagemaker("hyper-parameter-tuning-job", "*"),),
                "Pipelines names tuning jobs at run time within a 32-character limit, with no stable prefix",
            )
        )
    for kind in JOB_KINDS.values():
        # Tuning trials are named after their tuning job, not by Pipelines.
        trials = kind == "Training" and execution.tune
        streams = "*" if trials else f"{PIPELINE_JOB_PREFIX}*"
        grants += [
            Grant(
                f"{kind}JobLogGroup",
                ("logs:CreateLogGroup", "logs:DescribeLogStreams"),
                (log_group(kind),),
                f"SageMaker writes {kind.lower()} job logs to its fixed group /aws/sagemaker/{kind}Jobs",
            ),
            Grant(
                f"{kind}JobLogStreams",
                ("logs:CreateLogStream", "logs:PutLogEvents"),
                (f"{log_group(kind)}:log-stream:{streams}",),
                f"one log stream per {kind.lower()} job instance, named after the job"
                + (
                    " (tuning trials are named after their tuning job)"
                    if trials
                    else ", which Pipelines names"
                ),
            ),
        ]
    return grants


def _repository_arn(stack: Stack, image: str) -> str:
    match = PRIVATE_ECR_IMAGE.match(image)
    assert match is not None  # checked by ExecutionScope
    return f"arn:{stack.partition}:ecr:{match['region']}:{match['account']}:repository/{match['repository']}"


class SageMakerExecutionRole(Construct):
    """The execution role. Exposes ``role`` and ``grants`` (its hand-written statements)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: ExecutionRoleProps,
        raw_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        data_key: kms.IKey,
        artifacts_key: kms.IKey,
        image_repository: ecr.IRepository,
        vpc: ec2.IVpc,
        boundary: iam.IManagedPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        execution = props.execution
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            path=props.role_path,
            description=f"{props.qualifier}: SageMaker pipeline {execution.pipeline_name} and its jobs",
            permissions_boundary=boundary,
        )
        self.grants = execution_grants(
            stack,
            execution,
            role_arn=self.role.role_arn,
            raw=raw_bucket,
            artifacts=artifacts_bucket,
            vpc_id=vpc.vpc_id,
        )
        self.grants.append(
            Grant(
                "GrantVolumeKeyToAwsResources",
                ("kms:CreateGrant",),
                (artifacts_key.key_arn,),
                "SageMaker attaches job volumes encrypted with the artifacts key through a grant",
                {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        if execution.external_images:
            self.grants.append(
                Grant(
                    "PullNamedExternalImages",
                    ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"),
                    tuple(sorted({_repository_arn(stack, i) for i in execution.external_images})),
                    "the stage trains on an image outside the project repository (ml.training.image, T6 "
                    "exception with its reason in the definition); only that repository",
                )
            )
        data_key.grant_decrypt(self.role)
        artifacts_key.grant_encrypt_decrypt(self.role)
        image_repository.grant_pull(self.role)
        attach(
            self.role,
            self.grants,
            granted_wildcards={
                **{
                    f"AwsSolutions::AwsSolutions-IAM5[Action::{action}]": (
                        f"{action} comes from grant_encrypt_decrypt() on the artifacts key alone: jobs "
                        "encrypt volumes and outputs with data keys it generates"
                    )
                    for action in _KEY_WILDCARDS
                },
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]": (
                    "ecr:GetAuthorizationToken (the registry login of grant_pull) has no resource scope"
                ),
            },
        )
        acknowledge_inline_policy(
            self.role,
            "the SageMaker execution role's policy is written for this role alone (its buckets, prefixes, "
            "keys, repository and job names); a managed copy could be attached elsewhere",
        )

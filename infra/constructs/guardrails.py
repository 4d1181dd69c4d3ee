"""Runtime guardrails: the permissions boundary of every SageMaker role (T1-T4 and N1-N3 enforced by IAM).

Tests and the audit prove the pipeline definition and the notebook are configured inside the
perimeter; this boundary is what stops a job that Pipelines, a notebook user or anyone holding
the role launches at run time from leaving it. It denies, using SageMaker's condition keys (names
from the Service Authorization Reference for SageMaker):

- processing, training and tuning jobs, monitoring schedules and job definitions, models and
  notebooks outside the stage's subnets and
  security groups (``sagemaker:VpcSubnets``, ``sagemaker:VpcSecurityGroupIds``);
- jobs and notebooks without the stage's KMS keys for volumes and outputs
  (``sagemaker:VolumeKmsKey``, ``sagemaker:OutputKmsKey``);
- jobs and models without network isolation (``sagemaker:NetworkIsolation``) and jobs without
  inter-container traffic encryption (``sagemaker:InterContainerTrafficEncryption``);
- notebooks with root access or direct internet access (``sagemaker:RootAccess``,
  ``sagemaker:DirectInternetAccess``);
- passing a role to any service but SageMaker (the ceiling admits ``iam:PassRole`` only with
  ``iam:PassedToService`` = SageMaker);
- R1: changing a model version's approval status (``sagemaker:UpdateModelPackage``, always), and,
  in a stage that requires approval, registering a version that is not ``PendingManualApproval``
  (``sagemaker:ModelApprovalStatus``): approving is a person's act, never a SageMaker role's.

A missing key is denied as well as a wrong value (``Null``), because an absent setting means the
unsafe default. The allow statement is only a ceiling: a boundary grants nothing by itself. None of
the rules is optional; ``GuardrailsProps`` names the stage, the construct takes the subnets,
security groups and keys that are the only ones allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.audit.acknowledge import acknowledge, acknowledge_guard
from infra.constructs.props import check_qualifier
from stage import PENDING_MANUAL_APPROVAL

# Monitoring schedules and job definitions start processing jobs on a schedule: the same rules.
_MONITORING: Final = (
    "sagemaker:CreateMonitoringSchedule",
    "sagemaker:UpdateMonitoringSchedule",
    "sagemaker:CreateDataQualityJobDefinition",
    "sagemaker:CreateModelQualityJobDefinition",
)
_JOBS: Final = (
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateTrainingJob",
    "sagemaker:CreateHyperParameterTuningJob",
    *_MONITORING,
)
_MODEL: Final = ("sagemaker:CreateModel",)
_TRANSFORM: Final = ("sagemaker:CreateTransformJob",)
_NOTEBOOK: Final = ("sagemaker:CreateNotebookInstance",)
_REGISTER: Final = ("sagemaker:CreateModelPackage",)
# R1: the call that approves or rejects a version; no role under the boundary may make it.
APPROVAL_ACTIONS: Final = ("sagemaker:UpdateModelPackage",)


@dataclass(frozen=True)
class Guardrail:
    """Deny ``actions`` when ``key`` is absent, and (if ``operator``) when ``operator`` matches ``values``."""

    sid: str
    actions: tuple[str, ...]
    key: str
    operator: str | None = None
    values: tuple[str, ...] = ()


def guardrails(
    *,
    subnet_ids: Sequence[str],
    security_group_ids: Sequence[str],
    kms_key_arns: Sequence[str],
    notebook_security_group_ids: Sequence[str] = (),
    require_approval: bool = True,
) -> tuple[Guardrail, ...]:
    """The deny rules for one stage: its subnets, security groups and keys are the only ones allowed.

    Jobs and models may use ``security_group_ids`` only; notebooks ``notebook_security_group_ids``
    (N7: a notebook never joins the jobs' group), or the same groups when none are given.
    """
    if not subnet_ids or not security_group_ids or not kms_key_arns:
        raise ValueError(
            "guardrails need the stage's subnets, security groups and KMS keys (none may be empty)"
        )
    in_vpc = (*_JOBS, *_MODEL, *_NOTEBOOK)
    # N7: one rule for jobs and models, one for notebooks (the same groups when none are named).
    notebook_groups = tuple(notebook_security_group_ids) or tuple(security_group_ids)
    group_rules = (
        Guardrail(
            "SecurityGroups",
            (*_JOBS, *_MODEL),
            "sagemaker:VpcSecurityGroupIds",
            "ForAnyValue:StringNotEquals",
            tuple(security_group_ids),
        ),
        Guardrail(
            "NotebookSecurityGroups",
            _NOTEBOOK,
            "sagemaker:VpcSecurityGroupIds",
            "ForAnyValue:StringNotEquals",
            notebook_groups,
        ),
    )
    return (
        Guardrail(
            "Subnets", in_vpc, "sagemaker:VpcSubnets", "ForAnyValue:StringNotEquals", tuple(subnet_ids)
        ),
        *group_rules,
        Guardrail(
            "VolumeKey",
            (*_JOBS, *_TRANSFORM, *_NOTEBOOK),
            "sagemaker:VolumeKmsKey",
            "ArnNotEquals",
            tuple(kms_key_arns),
        ),
        Guardrail(
            "OutputKey", (*_JOBS, *_TRANSFORM), "sagemaker:OutputKmsKey", "ArnNotEquals", tuple(kms_key_arns)
        ),
        Guardrail("NetworkIsolation", (*_JOBS, *_MODEL), "sagemaker:NetworkIsolation", "Bool", ("false",)),
        Guardrail(
            "InterContainerTrafficEncryption",
            _JOBS,
            "sagemaker:InterContainerTrafficEncryption",
            "Bool",
            ("false",),
        ),
        Guardrail("RootAccess", _NOTEBOOK, "sagemaker:RootAccess", "StringNotEquals", ("Disabled",)),
        Guardrail(
            "DirectInternetAccess",
            _NOTEBOOK,
            "sagemaker:DirectInternetAccess",
            "StringNotEquals",
            ("Disabled",),
        ),
        *(
            (
                Guardrail(
                    "ModelApprovalStatus",
                    _REGISTER,
                    "sagemaker:ModelApprovalStatus",
                    "StringNotEquals",
                    (PENDING_MANUAL_APPROVAL,),
                ),
            )
            if require_approval
            else ()
        ),
    )


# The most any SageMaker role of rookery may do; each role's own policy grants far less.
CEILING_ACTIONS: Final = (
    "sagemaker:*",
    "s3:GetObject*",
    "s3:PutObject*",
    "s3:ListBucket",
    "s3:GetBucketLocation",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
    "kms:DescribeKey",
    "kms:CreateGrant",
    "ecr:GetAuthorizationToken",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
    "cloudwatch:PutMetricData",
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeVpcs",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
)


def _condition_value(rule: Guardrail) -> str | list[str]:
    """A set operator (``ForAnyValue:``) keeps its list; a single value is written as a scalar."""
    if len(rule.values) == 1 and not (rule.operator or "").startswith("ForAnyValue:"):
        return rule.values[0]
    return list(rule.values)


def boundary_statements(rules: Sequence[Guardrail]) -> list[iam.PolicyStatement]:
    statements = [
        iam.PolicyStatement(sid="Ceiling", actions=list(CEILING_ACTIONS), resources=["*"]),
        iam.PolicyStatement(
            sid="CeilingPassRoleToSageMakerOnly",
            actions=["iam:PassRole"],
            resources=["*"],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
        ),
    ]
    statements.append(
        iam.PolicyStatement(
            sid="DenyApprovalStatusChanges",
            effect=iam.Effect.DENY,
            actions=list(APPROVAL_ACTIONS),
            resources=["*"],
        )
    )
    for rule in rules:
        statements.append(
            iam.PolicyStatement(
                sid=f"Deny{rule.sid}Missing",
                effect=iam.Effect.DENY,
                actions=list(rule.actions),
                resources=["*"],
                conditions={"Null": {rule.key: "true"}},
            )
        )
        if rule.operator is not None:
            statements.append(
                iam.PolicyStatement(
                    sid=f"Deny{rule.sid}Other",
                    effect=iam.Effect.DENY,
                    actions=list(rule.actions),
                    resources=["*"],
                    conditions={rule.operator: {rule.key: _condition_value(rule)}},
                )
            )
    return statements


@dataclass(frozen=True, kw_only=True)
class GuardrailsProps:
    qualifier: str
    require_approval: bool = True
    """Secure default: the roles may register ``PendingManualApproval`` versions only (R1)."""

    def __post_init__(self) -> None:
        check_qualifier(self)


class SageMakerGuardrails(Construct):
    """The permissions boundary (a managed policy) for the stage's SageMaker roles. Exposes ``policy``
    and ``rules``; ``apply(role)`` sets it on a role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        props: GuardrailsProps,
        subnets: Sequence[ec2.ISubnet],
        security_groups: Sequence[ec2.ISecurityGroup],
        keys: Sequence[kms.IKey],
        notebook_security_groups: Sequence[ec2.ISecurityGroup] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules = guardrails(
            subnet_ids=[s.subnet_id for s in subnets],
            security_group_ids=[g.security_group_id for g in security_groups],
            kms_key_arns=[k.key_arn for k in keys],
            notebook_security_group_ids=[g.security_group_id for g in notebook_security_groups],
            require_approval=props.require_approval,
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Boundary",
            description=(
                f"{props.qualifier}: permissions boundary of SageMaker roles; denies jobs, models and "
                "notebooks outside the VPC, without KMS, isolation or traffic encryption"
            ),
            statements=boundary_statements(self.rules),
        )
        acknowledge(
            self.policy,
            "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
            "a permissions boundary is a ceiling that grants nothing; its deny statements must cover every "
            "resource, and each role's own policy scopes the resources it may use",
        )
        acknowledge(
            self.policy,
            "AwsSolutions::AwsSolutions-IAM5[Action::sagemaker:*]",
            "the boundary's ceiling admits SageMaker as a whole so its deny statements decide; the roles "
            "under it are granted named SageMaker actions on named resources only",
        )
        for action in ("s3:GetObject*", "s3:PutObject*", "kms:GenerateDataKey*", "kms:ReEncrypt*"):
            acknowledge(
                self.policy,
                f"AwsSolutions::AwsSolutions-IAM5[Action::{action}]",
                f"{action} in the boundary's ceiling only bounds what the roles' own scoped grants may add",
            )
        acknowledge_guard(
            self.policy,
            "iam_managed_policy_no_statements_with_full_access_check",
            "sagemaker:* is the ceiling of a permissions boundary, which grants nothing by itself; the "
            "roles under it are granted named SageMaker actions on named resources only",
        )
        acknowledge(
            self.policy,
            "NIST.800.53.R5::NIST.800.53.R5-IAMPolicyNoStatementsWithFullAccess",
            "sagemaker:* appears only in the ceiling of a permissions boundary, which grants nothing; "
            "the deny statements below it enforce VPC, KMS, isolation and encryption on every job",
        )

    def apply(self, role: iam.IRole) -> None:
        iam.PermissionsBoundary.of(role).apply(self.policy)
